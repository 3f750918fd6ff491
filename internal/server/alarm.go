package server

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"

	"github.com/cadrekv/cadre/internal/cerr"
	"github.com/cadrekv/cadre/internal/membership"
	"github.com/cadrekv/cadre/internal/storage/mvcc"
)

// Alarms are raised and cleared through raft, so every member agrees; they
// live in the backend's meta bucket ("alarm/<member>/<type>"). NOSPACE is
// raised when a write would take the backend past --quota-backend-bytes:
// writes are then refused until an operator compacts, defragments and
// disarms, while reads and deletes keep working (etcd's behaviour).

const metaAlarmPrefix = "alarm/"

type alarmSet struct {
	mu     sync.RWMutex
	active map[string]*pb.AlarmMember // key: member/type
}

func alarmKey(member uint64, t pb.AlarmType) string {
	return fmt.Sprintf("%s%016x/%d", metaAlarmPrefix, member, int32(t))
}

func (a *alarmSet) list() []*pb.AlarmMember {
	a.mu.RLock()
	defer a.mu.RUnlock()
	out := make([]*pb.AlarmMember, 0, len(a.active))
	for _, m := range a.active {
		out = append(out, &pb.AlarmMember{MemberID: m.MemberID, Alarm: m.Alarm})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].MemberID != out[j].MemberID {
			return out[i].MemberID < out[j].MemberID
		}
		return out[i].Alarm < out[j].Alarm
	})
	return out
}

func (a *alarmSet) has(t pb.AlarmType) bool {
	a.mu.RLock()
	defer a.mu.RUnlock()
	for _, m := range a.active {
		if m.Alarm == t {
			return true
		}
	}
	return false
}

// recoverAlarms reloads the active alarms from the backend.
func (s *Server) recoverAlarms() error {
	metas, err := s.store.MetaWithPrefix(metaAlarmPrefix)
	if err != nil {
		return fmt.Errorf("reading alarms from backend: %w", err)
	}
	s.alarms.mu.Lock()
	defer s.alarms.mu.Unlock()
	s.alarms.active = map[string]*pb.AlarmMember{}
	for k := range metas {
		var member uint64
		var t int32
		if _, err := fmt.Sscanf(strings.TrimPrefix(k, metaAlarmPrefix), "%016x/%d", &member, &t); err != nil {
			return fmt.Errorf("unreadable alarm record %q", k)
		}
		s.alarms.active[k] = &pb.AlarmMember{MemberID: member, Alarm: pb.AlarmType(t)}
	}
	return nil
}

// applyAlarm applies an alarm change inside the apply batch.
func (s *Server) applyAlarm(b *mvcc.Batch, r *pb.AlarmRequest) result {
	k := alarmKey(r.MemberID, r.Alarm)
	s.alarms.mu.Lock()
	switch r.Action {
	case pb.AlarmRequest_ACTIVATE:
		if _, ok := s.alarms.active[k]; !ok {
			s.alarms.active[k] = &pb.AlarmMember{MemberID: r.MemberID, Alarm: r.Alarm}
			b.SetMeta(k, []byte{1})
			s.lg.Warn("alarm raised", "alarm", r.Alarm.String(), "member", membership.IDString(r.MemberID))
		}
	case pb.AlarmRequest_DEACTIVATE:
		if _, ok := s.alarms.active[k]; ok {
			delete(s.alarms.active, k)
			b.SetMeta(k, nil)
			s.lg.Info("alarm cleared", "alarm", r.Alarm.String(), "member", membership.IDString(r.MemberID))
		}
	}
	s.alarms.mu.Unlock()
	return result{resp: &pb.AlarmResponse{Alarms: s.alarms.list()}}
}

// Alarm lists, raises or clears alarms (the latter two through raft).
func (s *Server) Alarm(ctx context.Context, r *pb.AlarmRequest) (*pb.AlarmResponse, error) {
	if r.Action == pb.AlarmRequest_GET {
		return &pb.AlarmResponse{Alarms: s.alarms.list()}, nil
	}
	resp, err := s.propose(ctx, &pb.InternalRaftRequest{Alarm: r})
	if err != nil {
		return nil, err
	}
	return resp.(*pb.AlarmResponse), nil
}

// checkQuota refuses a write that the backend quota cannot take, raising
// NOSPACE (once) through raft. Deletes and compactions are never refused:
// they are how an operator makes room.
func (s *Server) checkQuota(r *pb.InternalRaftRequest, size int) error {
	if r.Put == nil && r.Txn == nil && r.LeaseGrant == nil {
		return nil
	}
	if r.Txn != nil && !txnWrites(r.Txn) {
		return nil
	}
	if s.alarms.has(pb.AlarmType_NOSPACE) {
		return cerr.ErrNoSpace
	}
	// Room for the request itself and bbolt's page overhead around it.
	if s.store.Size()+int64(size)*2 <= s.quota() {
		return nil
	}
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), s.reqTimout)
		defer cancel()
		if _, err := s.Alarm(ctx, &pb.AlarmRequest{Action: pb.AlarmRequest_ACTIVATE, MemberID: s.id, Alarm: pb.AlarmType_NOSPACE}); err != nil {
			s.lg.Warn("raising the NOSPACE alarm failed", "error", err.Error())
		}
	}()
	return cerr.ErrNoSpace
}

// txnWrites reports whether a txn may put anything (either branch).
func txnWrites(t *pb.TxnRequest) bool {
	for _, ops := range [][]*pb.RequestOp{t.Success, t.Failure} {
		for _, op := range ops {
			switch x := op.Request.(type) {
			case *pb.RequestOp_RequestPut:
				return true
			case *pb.RequestOp_RequestTxn:
				if txnWrites(x.RequestTxn) {
					return true
				}
			}
		}
	}
	return false
}

// Defragment rewrites this member's backend without its free pages.
func (s *Server) Defragment(ctx context.Context) error {
	var err error
	for try := 0; try < 50; try++ {
		_, _, err = s.store.Defragment()
		if err == nil || !errorsIsBatchOpen(err) {
			break
		}
		// The apply loop holds a batch only briefly: wait and retry.
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-s.stopping:
			return cerr.ErrStopped
		case <-time.After(10 * time.Millisecond):
		}
	}
	if err == nil {
		s.metrics.DBTotalSize.Set(float64(s.store.Size()))
	}
	return err
}

func errorsIsBatchOpen(err error) bool { return errors.Is(err, mvcc.ErrBatchOpen) }

// HashKV hashes this member's key history up to rev (see mvcc.HashKV).
func (s *Server) HashKV(ctx context.Context, rev int64) (*pb.HashKVResponse, error) {
	h, hrev, comp, err := s.store.HashKV(rev)
	if err != nil {
		return nil, err
	}
	return &pb.HashKVResponse{Hash: h, CompactRevision: comp, HashRevision: hrev, Header: s.Header(0)}, nil
}

// Hash hashes this member's whole backend (see mvcc.Snapshot.Hash).
func (s *Server) Hash(ctx context.Context) (*pb.HashResponse, error) {
	sn, err := s.store.OpenSnapshot()
	if err != nil {
		return nil, err
	}
	defer sn.Close()
	h, err := sn.Hash()
	if err != nil {
		return nil, err
	}
	return &pb.HashResponse{Hash: h, Header: s.Header(0)}, nil
}
