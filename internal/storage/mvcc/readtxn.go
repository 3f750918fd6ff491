package mvcc

import (
	"errors"
	"fmt"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
)

// ErrNotReadOnly is returned by ReadTxn for a txn that may write.
var ErrNotReadOnly = errors.New("mvcc: txn has puts or deletes; it must be applied through a Batch")

// TxnReadOnly reports whether no branch of t, nested txns included, puts
// or deletes anything: such a txn is a read and needs no log entry.
func TxnReadOnly(t *pb.TxnRequest) bool {
	for _, ops := range [][]*pb.RequestOp{t.Success, t.Failure} {
		for _, op := range ops {
			switch x := op.Request.(type) {
			case *pb.RequestOp_RequestPut, *pb.RequestOp_RequestDeleteRange:
				return false
			case *pb.RequestOp_RequestTxn:
				if x.RequestTxn != nil && !TxnReadOnly(x.RequestTxn) {
					return false
				}
			}
		}
	}
	return true
}

// readView is the published state at one revision: the index, the
// revision and compacted revision, and a read transaction (with the
// deferred overlay) taken together under mu, as Range takes them.
type readView struct {
	tree           *index
	rev, compacted int64
	src            kvSource
	probe          keyIndex
	kbuf           [revKeyLen + 1]byte
}

func (v *readView) get(r revision, withValue bool) (*mvccpb.KeyValue, error) {
	return v.src.get(v.kbuf[:0], r, withValue)
}

// ReadTxn evaluates a read-only txn (TxnReadOnly) on committed state at
// one revision, giving what Batch.Txn would give applied at that point,
// without a Batch: compares see the state at that revision, ranges read
// at it (or at their own revision), and the header carries it.
func (s *Store) ReadTxn(req *pb.TxnRequest) (*pb.TxnResponse, error) {
	if !TxnReadOnly(req) {
		return nil, ErrNotReadOnly
	}
	s.mu.RLock()
	if s.closed {
		s.mu.RUnlock()
		return nil, ErrClosed
	}
	v := &readView{tree: s.tree, rev: s.rev, compacted: s.compacted, src: kvSource{ov: s.ov}}
	// Opened under mu with the index: no batch or compaction can be
	// published in between, and the compactor deletes only revisions this
	// transaction's snapshot still holds.
	tx, err := s.db.Begin(false)
	s.mu.RUnlock()
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	v.src.kvb = tx.Bucket(bucketKV)
	// The order of Batch.Txn: every compare of the chosen path first, then
	// the request errors of the chosen branches, then the reads.
	path, err := v.comparePath(req, nil)
	if err != nil {
		return nil, err
	}
	pos := 0
	if err := v.check(req, path, &pos); err != nil {
		return nil, err
	}
	pos = 0
	resp, err := execTxn(v, req, path, &pos)
	if err != nil {
		return nil, err
	}
	resp.Header.Revision = v.rev
	return resp, nil
}

// comparePath is Batch.comparePath on the view.
func (v *readView) comparePath(req *pb.TxnRequest, path []bool) ([]bool, error) {
	ok := true
	for _, c := range req.Compare {
		res, err := compareOn(v.tree, &v.probe, v.get, c)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrCorrupt, err)
		}
		if !res {
			ok = false
			break
		}
	}
	path = append(path, ok)
	for _, op := range branch(req, ok) {
		if t, isTxn := op.Request.(*pb.RequestOp_RequestTxn); isTxn && t.RequestTxn != nil {
			var err error
			if path, err = v.comparePath(t.RequestTxn, path); err != nil {
				return nil, err
			}
		}
	}
	return path, nil
}

// check is the read half of Batch.checkTxn: a range at a compacted or
// future revision fails the whole txn.
func (v *readView) check(req *pb.TxnRequest, path []bool, pos *int) error {
	ok := path[*pos]
	*pos++
	for _, op := range branch(req, ok) {
		switch tv := op.Request.(type) {
		case *pb.RequestOp_RequestRange:
			if _, err := checkRev(tv.RequestRange.Revision, v.rev, v.compacted); err != nil {
				return err
			}
		case *pb.RequestOp_RequestTxn:
			if tv.RequestTxn != nil {
				if err := v.check(tv.RequestTxn, path, pos); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// rangeReq reads at the view's revision (or the request's own).
func (v *readView) rangeReq(r *pb.RangeRequest) (*pb.RangeResponse, error) {
	plan, err := planRange(v.tree, &v.probe, v.rev, v.compacted, r)
	if err != nil {
		return nil, err
	}
	return finishRange(v.src, plan, r)
}

// put and deleteRange never run: ReadTxn admits only read-only txns.
func (v *readView) put(*pb.PutRequest) (*pb.PutResponse, error) { return nil, ErrNotReadOnly }
func (v *readView) deleteRange(*pb.DeleteRangeRequest) (*pb.DeleteRangeResponse, error) {
	return nil, ErrNotReadOnly
}
