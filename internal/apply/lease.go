package apply

import (
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"

	"github.com/cadrekv/cadre/internal/lease"
	"github.com/cadrekv/cadre/internal/storage/schema"
)

// applyLease applies lease requests. TTLs are used as proposed: the
// proposer raised them to the minimum, so no member's election timeout
// changes what is stored.
func (a *Applier) applyLease(b Batch, r *pb.InternalRaftRequest) (Result, bool) {
	l := a.cfg.Lessor
	switch {
	case r.LeaseGrant != nil:
		info, err := l.Grant(r.LeaseGrant.ID, r.LeaseGrant.TTL)
		if err != nil {
			return Result{Err: err}, true
		}
		b.SetMeta(schema.LeaseKey(info.ID), schema.EncodeLease(info.ID, info.GrantedTTL, info.GrantedTTL))
		return Result{Resp: &pb.LeaseGrantResponse{ID: info.ID, TTL: info.GrantedTTL}}, true
	case r.LeaseRevoke != nil:
		id := r.LeaseRevoke.ID
		// Revoke hands back the keys sorted, so every member deletes them
		// in the same order; all at one revision, as etcd.
		keys, err := l.Revoke(id)
		if err != nil {
			return Result{Err: lease.ErrLeaseNotFound}, true
		}
		if _, err := b.DeleteKeys(keys); err != nil {
			return Result{Err: err}, true
		}
		b.SetMeta(schema.LeaseKey(id), nil)
		return Result{Resp: &pb.LeaseRevokeResponse{}}, true
	case r.LeaseCheckpoint != nil:
		for _, c := range r.LeaseCheckpoint.Checkpoints {
			granted, ok := l.Granted(c.ID)
			if !ok {
				continue // revoked meanwhile
			}
			if err := l.Checkpoint(c.ID, c.Remaining_TTL); err == nil {
				b.SetMeta(schema.LeaseKey(c.ID), schema.EncodeLease(c.ID, granted, max(c.Remaining_TTL, 0)))
			}
		}
		return Result{Resp: &pb.LeaseCheckpointResponse{}}, true
	}
	return Result{}, false
}

// trackLease keeps the lessor's key sets equal to what the batch writes:
// a put moves its key to the lease it carries (or out of any), a deletion
// detaches it.
func (a *Applier) trackLease(key []byte, id int64, tomb bool) {
	l := a.cfg.Lessor
	old := l.LeaseOf(key)
	if tomb || id == 0 {
		if old != 0 {
			l.Detach(old, key)
		}
		return
	}
	if old != id {
		// checkLeases made sure the lease exists; a put that keeps its
		// key's lease (ignore_lease) names one that exists too.
		_ = l.Attach(id, key)
	}
}

// checkLeases refuses a put or txn that names a lease that does not exist
// (at apply, so every member decides the same). For a txn, every put of
// both branches is checked: stricter than etcd, which checks only the
// branch that runs.
func (a *Applier) checkLeases(r *pb.InternalRaftRequest) error {
	check := func(id int64) error {
		if id == 0 {
			return nil
		}
		if !a.cfg.Lessor.Exists(id) {
			return lease.ErrLeaseNotFound
		}
		return nil
	}
	var walk func(ops []*pb.RequestOp) error
	walk = func(ops []*pb.RequestOp) error {
		for _, op := range ops {
			switch x := op.Request.(type) {
			case *pb.RequestOp_RequestPut:
				if err := check(x.RequestPut.Lease); err != nil {
					return err
				}
			case *pb.RequestOp_RequestTxn:
				if err := walk(x.RequestTxn.Success); err != nil {
					return err
				}
				if err := walk(x.RequestTxn.Failure); err != nil {
					return err
				}
			}
		}
		return nil
	}
	switch {
	case r.Put != nil:
		return check(r.Put.Lease)
	case r.Txn != nil:
		if err := walk(r.Txn.Success); err != nil {
			return err
		}
		return walk(r.Txn.Failure)
	}
	return nil
}
