package server

import (
	"context"
	"errors"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"

	"github.com/cadrekv/cadre/internal/cerr"
	"github.com/cadrekv/cadre/internal/storage/mvcc"
)

// Alarms are raised and cleared through raft, so every member agrees
// (applied by internal/apply into the backend's meta bucket). NOSPACE is
// raised when a write would take the backend past --quota-backend-bytes:
// writes are then refused until an operator compacts, defragments and
// disarms, while reads and deletes keep working (etcd's behaviour).

// Alarm lists, raises or clears alarms (the latter two through raft).
func (s *Server) Alarm(ctx context.Context, r *pb.AlarmRequest) (*pb.AlarmResponse, error) {
	if r.Action == pb.AlarmRequest_GET {
		// All alarms, or those of one type (etcd's filter).
		var out []*pb.AlarmMember
		for _, a := range s.alarms.List() {
			if r.Alarm == pb.AlarmType_NONE || a.Alarm == r.Alarm {
				out = append(out, a)
			}
		}
		return &pb.AlarmResponse{Alarms: out}, nil
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
	if s.alarms.Has(pb.AlarmType_NOSPACE) {
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
