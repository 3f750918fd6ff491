package mvcc

import (
	"bytes"
	"cmp"
	"fmt"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
)

// Txn evaluates the compares, then runs the chosen branch atomically at one
// new revision (if it writes anything). As in etcd, every compare, including
// those of nested transactions, is evaluated against the state before the
// transaction, and the chosen branches are checked before anything is
// written, so a Txn that returns an error has changed nothing.
func (b *Batch) Txn(req *pb.TxnRequest) (*pb.TxnResponse, error) {
	if err := b.usable(); err != nil {
		return nil, err
	}
	path := b.comparePath(req, nil)
	if b.err != nil {
		return nil, b.err // a compare hit corruption
	}
	pos := 0
	var effects []effect
	if err := b.checkTxn(req, path, &pos, &effects); err != nil {
		return nil, err
	}
	pos = 0
	resp, err := execTxn(b, req, path, &pos)
	b.endOp()
	if err != nil {
		// checkTxn ruled out request errors: this is I/O or corruption, and
		// part of the branch may be written.
		return nil, b.fail(fmt.Errorf("mvcc: txn failed after it started writing: %w", err))
	}
	resp.Header.Revision = b.rev
	return resp, nil
}

func branch(req *pb.TxnRequest, succeeded bool) []*pb.RequestOp {
	if succeeded {
		return req.Success
	}
	return req.Failure
}

// comparePath evaluates the compares of req and, depth first, of the nested
// transactions in its chosen branch; execution consumes it in that order.
func (b *Batch) comparePath(req *pb.TxnRequest, path []bool) []bool {
	ok := true
	for _, c := range req.Compare {
		if !b.compare(c) {
			ok = false
			break
		}
	}
	path = append(path, ok)
	for _, op := range branch(req, ok) {
		if t, isTxn := op.Request.(*pb.RequestOp_RequestTxn); isTxn && t.RequestTxn != nil {
			path = b.comparePath(t.RequestTxn, path)
		}
	}
	return path
}

// compare applies c to every live key in its range at the current state.
func (b *Batch) compare(c *pb.Compare) bool {
	ok, err := compareOn(b.tree, &b.probe, func(r revision, withValue bool) (*mvccpb.KeyValue, error) {
		return getKV(b.kvb, b.kbuf[:0], r, withValue)
	}, c)
	if err != nil {
		b.fail(fmt.Errorf("%w: %w", ErrCorrupt, err))
		return false
	}
	return ok
}

// compareOn applies c to every live key in its range in t, reading stored
// values with get. With no key in range, a VALUE compare fails and the
// others compare as if against zero (etcd: a missing key has version,
// create and mod revision 0). The write path (Batch) and the read-only
// path (Store.ReadTxn) share it, so both decide alike.
func compareOn(t *index, probe *keyIndex, get func(r revision, withValue bool) (*mvccpb.KeyValue, error), c *pb.Compare) (bool, error) {
	matched, result := false, true
	var err error
	visit(t, probe, c.Key, c.RangeEnd, func(ki *keyIndex) bool {
		if !ki.live() {
			return true
		}
		matched = true
		var value []byte
		var lease int64
		if c.Target == pb.Compare_VALUE || c.Target == pb.Compare_LEASE {
			// Only these targets need the stored KeyValue.
			var kv *mvccpb.KeyValue
			if kv, err = get(ki.last().revision, c.Target == pb.Compare_VALUE); err != nil {
				result = false
				return false
			}
			value, lease = kv.Value, kv.Lease
		}
		result = compareResult(c.Result, compareTarget(c, value, ki.create, ki.last().main, ki.ver, lease))
		return result
	})
	if err != nil {
		return false, err
	}
	if !matched {
		if c.Target == pb.Compare_VALUE {
			return false, nil
		}
		return compareResult(c.Result, compareTarget(c, nil, 0, 0, 0, 0)), nil
	}
	return result, nil
}

// compareTarget compares the key's target field with the compare's operand;
// an operand of the wrong kind counts as zero, as in etcd.
func compareTarget(c *pb.Compare, value []byte, create, mod, ver, lease int64) int {
	switch c.Target {
	case pb.Compare_VALUE:
		return bytes.Compare(value, c.GetValue())
	case pb.Compare_CREATE:
		return cmp.Compare(create, c.GetCreateRevision())
	case pb.Compare_MOD:
		return cmp.Compare(mod, c.GetModRevision())
	case pb.Compare_VERSION:
		return cmp.Compare(ver, c.GetVersion())
	case pb.Compare_LEASE:
		return cmp.Compare(lease, c.GetLease())
	}
	return 0
}

func compareResult(r pb.Compare_CompareResult, c int) bool {
	switch r {
	case pb.Compare_EQUAL:
		return c == 0
	case pb.Compare_NOT_EQUAL:
		return c != 0
	case pb.Compare_GREATER:
		return c > 0
	case pb.Compare_LESS:
		return c < 0
	}
	return true // unknown result: etcd treats it as satisfied
}

// effect is a write of the branch being checked: a put of key, or a delete
// of the range [key, end).
type effect struct {
	key, end []byte
	put      bool
}

// checkTxn validates the chosen branches before anything is written: range
// revisions, and puts with ignore_value/ignore_lease, whose key must exist
// before the transaction (as etcd checks) and still exist at that point of
// the branch (etcd would crash applying a put after a delete of its key).
func (b *Batch) checkTxn(req *pb.TxnRequest, path []bool, pos *int, effects *[]effect) error {
	ok := path[*pos]
	*pos++
	for _, op := range branch(req, ok) {
		switch tv := op.Request.(type) {
		case *pb.RequestOp_RequestRange:
			if _, err := checkRev(tv.RequestRange.Revision, b.rev, b.compacted); err != nil {
				return err
			}
		case *pb.RequestOp_RequestPut:
			p := tv.RequestPut
			if p.IgnoreValue || p.IgnoreLease {
				before := b.exists(p.Key)
				if !before || !existsAfter(p.Key, *effects, before) {
					return fmt.Errorf("%w: ignore_value/ignore_lease need an existing key, %q does not exist", ErrKeyNotFound, p.Key)
				}
			}
			*effects = append(*effects, effect{key: p.Key, put: true})
		case *pb.RequestOp_RequestDeleteRange:
			d := tv.RequestDeleteRange
			*effects = append(*effects, effect{key: d.Key, end: d.RangeEnd})
		case *pb.RequestOp_RequestTxn:
			if tv.RequestTxn != nil {
				if err := b.checkTxn(tv.RequestTxn, path, pos, effects); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

func (b *Batch) exists(key []byte) bool {
	ki := b.lookup(key)
	return ki != nil && ki.live()
}

// existsAfter reports whether key exists after effects, given that it
// existed (or not) before them: the last effect touching key decides.
func existsAfter(key []byte, effects []effect, before bool) bool {
	for i := len(effects) - 1; i >= 0; i-- {
		e := effects[i]
		if e.put && bytes.Equal(e.key, key) {
			return true
		}
		if !e.put && inRange(key, e.key, e.end) {
			return false
		}
	}
	return before
}

// txnOps runs the operations of a txn's chosen branches: a Batch (reads
// and writes), or a readView (reads only: ReadTxn admits no writes).
type txnOps interface {
	rangeReq(*pb.RangeRequest) (*pb.RangeResponse, error)
	put(*pb.PutRequest) (*pb.PutResponse, error)
	deleteRange(*pb.DeleteRangeRequest) (*pb.DeleteRangeResponse, error)
}

// execTxn runs the branches path chose, nested txns included.
func execTxn(x txnOps, req *pb.TxnRequest, path []bool, pos *int) (*pb.TxnResponse, error) {
	ok := path[*pos]
	*pos++
	ops := branch(req, ok)
	// Nested responses keep an empty header, as etcd's do.
	resp := &pb.TxnResponse{Header: &pb.ResponseHeader{}, Succeeded: ok, Responses: make([]*pb.ResponseOp, len(ops))}
	for i, op := range ops {
		out := &pb.ResponseOp{}
		switch tv := op.Request.(type) {
		case *pb.RequestOp_RequestRange:
			r, err := x.rangeReq(tv.RequestRange)
			if err != nil {
				return nil, err
			}
			out.Response = &pb.ResponseOp_ResponseRange{ResponseRange: r}
		case *pb.RequestOp_RequestPut:
			r, err := x.put(tv.RequestPut)
			if err != nil {
				return nil, err
			}
			out.Response = &pb.ResponseOp_ResponsePut{ResponsePut: r}
		case *pb.RequestOp_RequestDeleteRange:
			r, err := x.deleteRange(tv.RequestDeleteRange)
			if err != nil {
				return nil, err
			}
			out.Response = &pb.ResponseOp_ResponseDeleteRange{ResponseDeleteRange: r}
		case *pb.RequestOp_RequestTxn:
			r := &pb.TxnResponse{Header: &pb.ResponseHeader{}}
			if tv.RequestTxn != nil {
				var err error
				if r, err = execTxn(x, tv.RequestTxn, path, pos); err != nil {
					return nil, err
				}
			}
			out.Response = &pb.ResponseOp_ResponseTxn{ResponseTxn: r}
		}
		resp.Responses[i] = out
	}
	return resp, nil
}
