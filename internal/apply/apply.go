package apply

import (
	"errors"
	"fmt"
	"log/slog"
	"sort"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"

	"github.com/cadrekv/cadre/internal/lease"
	"github.com/cadrekv/cadre/internal/membership"
	"github.com/cadrekv/cadre/internal/storage/schema"
)

// ErrUnsupported is the result of a committed request the applier does
// not know (every member refuses it the same way).
var ErrUnsupported = errors.New("apply: unsupported request in committed entry")

// Config wires an Applier to the state it changes.
type Config struct {
	Backend Backend
	Lessor  Lessor
	Auth    Auth
	Alarms  *Alarms
	Members Members
	// OnAuthenticate records a simple token issued by an applied
	// Authenticate (only its hash is in the log). Tokens are session state
	// with a local expiry, not part of the replicated state. Optional.
	OnAuthenticate func(tokenHash, user string, authRevision uint64)
	Logger         *slog.Logger
}

// Applier applies committed entries. It is used by one goroutine.
type Applier struct {
	cfg Config
	lg  *slog.Logger
}

// New returns an Applier over cfg's state.
func New(cfg Config) *Applier {
	lg := cfg.Logger
	if lg == nil {
		lg = slog.New(slog.DiscardHandler)
	}
	return &Applier{cfg: cfg, lg: lg}
}

// Result is what the proposer of one entry receives.
type Result struct {
	ID    uint64 // the proposer's request ID; 0 when nobody waits
	Resp  proto.Message
	Err   error
	Index uint64 // the entry's raft index
}

// ConfChange is one membership entry of the batch, in log order. Raft must
// be told of every one (ApplyConfChange), including those the backend
// already held (replayed) and those refused, whose NodeId is then 0 so
// raft treats them as a no-op, as every member does.
type ConfChange struct {
	Raft   raftpb.ConfChangeI
	Change membership.ConfChange
	Fresh  bool   // applied now, not skipped as already held by the backend
	Err    error  // why the change was refused (nil: applied or skipped)
	Index  uint64 // the entry's raft index
	Action string // what it did, as the audit trail names it (fresh entries only)
}

// Outcome is what applying a batch produced.
type Outcome struct {
	Results     []Result
	ConfChanges []ConfChange
	// Last is the index of the last entry (0 for an empty batch).
	Last uint64
}

// Apply applies ents, consecutive committed entries, in one backend
// transaction. Entries at or below the backend's applied index are skipped
// (a replay after a restart, or entries an installed snapshot holds), but
// their conf changes are still reported for raft. sync makes the backend
// commit durable with this batch (e.g. before the raft log up to it is
// released). An error means the state machine can no longer follow the
// log: the caller must stop.
func (a *Applier) Apply(ents []*raftpb.Entry, sync bool) (Outcome, error) {
	var out Outcome
	if len(ents) == 0 {
		return out, nil
	}
	applied, _ := a.cfg.Backend.Applied()
	last := ents[len(ents)-1]
	out.Last = last.GetIndex()
	b, err := a.cfg.Backend.Begin()
	if err != nil {
		return out, fmt.Errorf("starting backend transaction: %w", err)
	}
	b.OnWrite(a.trackLease)
	membershipChanged := false
	// One request value for the whole batch: an InternalRaftRequest is a
	// few hundred bytes of pointers, the largest allocation of a put's
	// apply. Nothing keeps r past applyRequest; its sub-messages are
	// decoded afresh each time.
	var r pb.InternalRaftRequest
	for _, e := range ents {
		fresh := e.GetIndex() > applied
		switch e.GetType() {
		case raftpb.EntryNormal:
			if !fresh || len(e.GetData()) == 0 {
				continue
			}
			if isCadreEntry(e.GetData()) {
				res, changed := a.applyCadre(b, e.GetData())
				membershipChanged = membershipChanged || changed
				if res.ID != 0 {
					res.Index = e.GetIndex()
					out.Results = append(out.Results, res)
				}
				continue
			}
			r.Reset()
			if err := proto.Unmarshal(e.GetData(), &r); err != nil {
				b.Abort()
				return out, fmt.Errorf("decoding committed entry %d: %w", e.GetIndex(), err)
			}
			res, changed := a.applyRequest(b, &r)
			membershipChanged = membershipChanged || changed
			if id := r.GetHeader().GetID(); id != 0 {
				res.ID, res.Index = id, e.GetIndex()
				out.Results = append(out.Results, res)
			}
		case raftpb.EntryConfChange, raftpb.EntryConfChangeV2:
			raw, cc, err := decodeConfChange(e)
			if raw == nil {
				b.Abort()
				return out, fmt.Errorf("decoding conf change at %d: %w", e.GetIndex(), err)
			}
			var before []*membership.Member
			if fresh {
				before = a.cfg.Members.Members()
			}
			if err == nil && fresh {
				err = a.cfg.Members.Apply(cc)
			}
			if fresh && !cc.LeaveJoint {
				a.recordAudit(b, e, cc, before, err)
			}
			if err != nil {
				if fresh {
					a.lg.Warn("rejected configuration change at apply", "entry-type", e.GetType().String(), "type", cc.Type.String(), "member", membership.IDString(cc.NodeID), "error", err.Error())
				}
				raw = noop(raw)
			}
			membershipChanged = membershipChanged || (fresh && err == nil)
			sync = true // the membership must be in the file itself
			action := ""
			if fresh {
				action = membership.ActionOfConfChange(cc, before)
			}
			out.ConfChanges = append(out.ConfChanges, ConfChange{Raft: raw, Change: cc, Fresh: fresh, Err: err, Index: e.GetIndex(), Action: action})
			if cc.RequestID != 0 {
				out.Results = append(out.Results, Result{ID: cc.RequestID, Err: err, Index: e.GetIndex()})
			}
		}
	}
	if last.GetIndex() <= applied {
		b.Abort() // nothing new: the batch changed nothing
		return out, nil
	}
	if membershipChanged {
		b.SetMeta(schema.MetaMembership, a.cfg.Members.Marshal())
	}
	if sync {
		b.Sync()
	}
	b.SetApplied(last.GetIndex(), last.GetTerm())
	if err := b.Commit(); err != nil {
		return out, fmt.Errorf("committing applied entries up to %d to the backend: %w", last.GetIndex(), err)
	}
	return out, nil
}

// applyRequest applies one normal entry; it reports whether the
// membership changed.
func (a *Applier) applyRequest(b Batch, r *pb.InternalRaftRequest) (Result, bool) {
	if res, ok := a.applyLease(b, r); ok {
		return res, false
	}
	if res, ok := a.applyAuth(b, r); ok {
		return res, false
	}
	if err := a.checkLeases(r); err != nil {
		return Result{Err: err}, false
	}
	switch {
	case r.Put != nil:
		resp, err := b.Put(r.Put)
		return Result{Resp: resp, Err: err}, false
	case r.DeleteRange != nil:
		resp, err := b.DeleteRange(r.DeleteRange)
		return Result{Resp: resp, Err: err}, false
	case r.Txn != nil:
		resp, err := b.Txn(r.Txn)
		return Result{Resp: resp, Err: err}, false
	case r.Compaction != nil:
		resp, err := b.Compact(r.Compaction.GetRevision())
		return Result{Resp: resp, Err: err}, false
	case r.Alarm != nil:
		// As etcd answers: the alarm raised or cleared by this request,
		// none if it changed nothing.
		resp := &pb.AlarmResponse{}
		if a.cfg.Alarms.apply(b, r.Alarm) {
			if r.Alarm.Action == pb.AlarmRequest_ACTIVATE {
				a.lg.Warn("alarm raised", "alarm", r.Alarm.Alarm.String(), "member", membership.IDString(r.Alarm.MemberID))
			} else {
				a.lg.Info("alarm cleared", "alarm", r.Alarm.Alarm.String(), "member", membership.IDString(r.Alarm.MemberID))
			}
			resp.Alarms = []*pb.AlarmMember{{MemberID: r.Alarm.MemberID, Alarm: r.Alarm.Alarm}}
		}
		return Result{Resp: resp}, false
	case r.ClusterMemberAttrSet != nil:
		at := r.ClusterMemberAttrSet
		err := a.cfg.Members.SetAttributes(at.GetMember_ID(), at.GetMemberAttributes().GetName(), at.GetMemberAttributes().GetClientUrls())
		if err != nil {
			a.lg.Warn("ignoring published attributes", "member", membership.IDString(at.GetMember_ID()), "error", err.Error())
			return Result{Err: err}, false
		}
		return Result{}, true
	}
	return Result{Err: ErrUnsupported}, false
}

// applyAuth applies an auth entry.
func (a *Applier) applyAuth(b Batch, r *pb.InternalRaftRequest) (Result, bool) {
	if r.Authenticate != nil {
		if a.cfg.OnAuthenticate != nil {
			a.cfg.OnAuthenticate(r.Authenticate.SimpleToken, r.Authenticate.Name, a.cfg.Auth.Revision())
		}
		return Result{Resp: &pb.AuthenticateResponse{}}, true
	}
	if r.AuthEnable == nil && r.AuthDisable == nil && r.AuthUserAdd == nil && r.AuthUserDelete == nil &&
		r.AuthUserChangePassword == nil && r.AuthUserGrantRole == nil && r.AuthUserRevokeRole == nil &&
		r.AuthRoleAdd == nil && r.AuthRoleDelete == nil && r.AuthRoleGrantPermission == nil && r.AuthRoleRevokePermission == nil {
		return Result{}, false
	}
	resp, err := a.cfg.Auth.Apply(b, r)
	if err != nil {
		return Result{Err: err}, true
	}
	if r.AuthEnable != nil || r.AuthDisable != nil {
		a.lg.Info("authentication changed", "enabled", a.cfg.Auth.Enabled(), "auth-revision", a.cfg.Auth.Revision())
	}
	return Result{Resp: resp}, true
}

// Recover rebuilds the in-memory state from the backend: membership,
// leases with their keys, alarms and auth (at start, and after a snapshot
// from the leader replaced the backend).
func (a *Applier) Recover(clusterID uint64) error {
	raw, err := a.cfg.Backend.Meta(schema.MetaMembership)
	if err != nil {
		return fmt.Errorf("reading membership from backend: %w", err)
	}
	cl, err := membership.Load(raw, clusterID)
	if err != nil {
		return err
	}
	a.cfg.Members.ReplaceWith(cl)
	if err := a.recoverLeases(); err != nil {
		return err
	}
	alarms, err := a.cfg.Backend.MetaWithPrefix(schema.AlarmPrefix)
	if err != nil {
		return fmt.Errorf("reading alarms from backend: %w", err)
	}
	if err := a.cfg.Alarms.load(alarms); err != nil {
		return err
	}
	authMeta, err := a.cfg.Backend.MetaWithPrefix(schema.AuthPrefix)
	if err != nil {
		return fmt.Errorf("reading auth state from backend: %w", err)
	}
	return a.cfg.Auth.Load(authMeta)
}

func (a *Applier) recoverLeases() error {
	metas, err := a.cfg.Backend.MetaWithPrefix(schema.LeasePrefix)
	if err != nil {
		return fmt.Errorf("reading leases from backend: %w", err)
	}
	keys, err := a.cfg.Backend.KeysWithLease()
	if err != nil {
		return fmt.Errorf("reading the keys attached to leases: %w", err)
	}
	infos := make([]lease.Info, 0, len(metas))
	for k, v := range metas {
		id, granted, remaining, err := schema.DecodeLease(v)
		if err != nil {
			return fmt.Errorf("decoding lease %s: %w", k, err)
		}
		infos = append(infos, lease.Info{ID: id, GrantedTTL: granted, RemainingTTL: remaining, Keys: keys[id]})
	}
	sort.Slice(infos, func(i, j int) bool { return infos[i].ID < infos[j].ID })
	a.cfg.Lessor.Recover(infos)
	return nil
}

// decodeConfChange decodes either kind of membership entry. The raft
// message is nil only when the entry cannot be decoded at all.
func decodeConfChange(e *raftpb.Entry) (raftpb.ConfChangeI, membership.ConfChange, error) {
	if e.GetType() == raftpb.EntryConfChangeV2 {
		raw, cc, err := membership.DecodeConfChangeV2(e.GetData())
		if raw == nil {
			return nil, cc, err
		}
		return raw, cc, err
	}
	raw, cc, err := membership.DecodeConfChange(e.GetData())
	if raw == nil {
		return nil, cc, err
	}
	return raw, cc, err
}

// noop is what raft is told of a change refused at apply, so that every
// member's raft configuration stays what its membership says.
func noop(raw raftpb.ConfChangeI) raftpb.ConfChangeI {
	if v1, ok := raw.AsV1(); ok {
		v1.NodeId = new(uint64(0))
		return v1
	}
	return membership.NoopConfChangeV2()
}
