package api

import (
	"bytes"
	"context"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
)

type kvServer struct {
	pb.UnimplementedKVServer
	m   Member
	lim Limits
}

func (s *kvServer) Range(ctx context.Context, r *pb.RangeRequest) (*pb.RangeResponse, error) {
	if len(r.Key) == 0 {
		return nil, rpctypes.ErrGRPCEmptyKey
	}
	if !validSort(r) {
		return nil, rpctypes.ErrGRPCInvalidSortOption
	}
	resp, err := s.m.Range(ctx, r)
	if err != nil {
		return nil, togRPC(err)
	}
	resp.Header = s.m.Header(resp.GetHeader().GetRevision())
	return resp, nil
}

func (s *kvServer) Put(ctx context.Context, r *pb.PutRequest) (*pb.PutResponse, error) {
	if err := checkPut(r); err != nil {
		return nil, err
	}
	resp, err := s.m.Put(ctx, r)
	if err != nil {
		return nil, togRPC(err)
	}
	resp.Header = s.m.Header(resp.GetHeader().GetRevision())
	return resp, nil
}

func (s *kvServer) DeleteRange(ctx context.Context, r *pb.DeleteRangeRequest) (*pb.DeleteRangeResponse, error) {
	if len(r.Key) == 0 {
		return nil, rpctypes.ErrGRPCEmptyKey
	}
	resp, err := s.m.DeleteRange(ctx, r)
	if err != nil {
		return nil, togRPC(err)
	}
	resp.Header = s.m.Header(resp.GetHeader().GetRevision())
	return resp, nil
}

func (s *kvServer) Txn(ctx context.Context, r *pb.TxnRequest) (*pb.TxnResponse, error) {
	if err := checkTxn(r, int(s.lim.MaxTxnOps)); err != nil {
		return nil, err
	}
	resp, err := s.m.Txn(ctx, r)
	if err != nil {
		return nil, togRPC(err)
	}
	resp.Header = s.m.Header(resp.GetHeader().GetRevision())
	return resp, nil
}

func (s *kvServer) Compact(ctx context.Context, r *pb.CompactionRequest) (*pb.CompactionResponse, error) {
	resp, err := s.m.Compact(ctx, r)
	if err != nil {
		return nil, togRPC(err)
	}
	resp.Header = s.m.Header(resp.GetHeader().GetRevision())
	return resp, nil
}

func checkPut(r *pb.PutRequest) error {
	if len(r.Key) == 0 {
		return rpctypes.ErrGRPCEmptyKey
	}
	if r.IgnoreValue && len(r.Value) != 0 {
		return rpctypes.ErrGRPCValueProvided
	}
	if r.IgnoreLease && r.Lease != 0 {
		return rpctypes.ErrGRPCLeaseProvided
	}
	return nil
}

// checkTxn enforces etcd's txn rules before proposing: bounded size, valid
// ops, and no key written twice (or written and deleted) in one branch.
// The size is bounded over the whole tree first, before any other work, so
// a huge or deeply nested request costs almost nothing to refuse.
func checkTxn(r *pb.TxnRequest, maxOps int) error {
	total := 0
	if !txnWithin(r, maxOps, 3*maxOps, &total) {
		return rpctypes.ErrGRPCTooManyOps
	}
	return checkTxnOps(r, maxOps)
}

// txnWithin bounds a txn tree as etcd does and more: no level holds more
// than budget compares or ops per branch, a nested txn gets what its parent
// left of the budget (so nesting is at most budget deep), and the whole tree
// holds at most limit compares and ops, as many as the largest flat txn
// (budget compares + budget ops in each branch). It stops at the first
// excess: its cost is bounded by limit, whatever the request's size.
func txnWithin(r *pb.TxnRequest, budget, limit int, total *int) bool {
	opc := max(len(r.Compare), len(r.Success), len(r.Failure))
	if opc > budget {
		return false
	}
	if *total += len(r.Compare) + len(r.Success) + len(r.Failure); *total > limit {
		return false
	}
	for _, branch := range [][]*pb.RequestOp{r.Success, r.Failure} {
		for _, op := range branch {
			if t, ok := op.Request.(*pb.RequestOp_RequestTxn); ok && t.RequestTxn != nil {
				if !txnWithin(t.RequestTxn, budget-opc, limit, total) {
					return false
				}
			}
		}
	}
	return true
}

func checkTxnOps(r *pb.TxnRequest, maxOps int) error {
	for _, c := range r.Compare {
		if len(c.Key) == 0 {
			return rpctypes.ErrGRPCEmptyKey
		}
	}
	for _, branch := range [][]*pb.RequestOp{r.Success, r.Failure} {
		for _, op := range branch {
			if err := checkOp(op, maxOps); err != nil {
				return err
			}
		}
		if _, _, err := branchWrites(branch); err != nil {
			return err
		}
	}
	return nil
}

func checkOp(op *pb.RequestOp, maxOps int) error {
	switch x := op.Request.(type) {
	case *pb.RequestOp_RequestRange:
		if len(x.RequestRange.Key) == 0 {
			return rpctypes.ErrGRPCEmptyKey
		}
	case *pb.RequestOp_RequestPut:
		return checkPut(x.RequestPut)
	case *pb.RequestOp_RequestDeleteRange:
		if len(x.RequestDeleteRange.Key) == 0 {
			return rpctypes.ErrGRPCEmptyKey
		}
	case *pb.RequestOp_RequestTxn:
		return checkTxnOps(x.RequestTxn, maxOps)
	default:
		// An op with no request (as JSON with a misspelt field gives):
		// refused with etcd's error rather than run as a no-op.
		return rpctypes.ErrGRPCKeyNotFound
	}
	return nil
}

type keyRange struct{ start, end []byte }

func (k keyRange) contains(key []byte) bool {
	if len(k.end) == 0 {
		return bytes.Equal(k.start, key)
	}
	if bytes.Compare(key, k.start) < 0 {
		return false
	}
	// An end of "\x00" means "to the end of the keyspace".
	return (len(k.end) == 1 && k.end[0] == 0) || bytes.Compare(key, k.end) < 0
}

// branchWrites collects the keys put and the ranges deleted by one branch,
// including both branches of nested txns (either may run), and reports a
// duplicate key when one key is put twice or put inside a deleted range.
// The two branches of a nested txn never run together, so they are not
// checked against each other, only against the enclosing branch.
func branchWrites(ops []*pb.RequestOp) (puts map[string]bool, dels []keyRange, err error) {
	puts = map[string]bool{}
	var ownDels, nestedDels []keyRange
	nestedPuts := map[string]bool{}
	for _, op := range ops {
		switch x := op.Request.(type) {
		case *pb.RequestOp_RequestPut:
			if puts[string(x.RequestPut.Key)] {
				return nil, nil, rpctypes.ErrGRPCDuplicateKey
			}
			puts[string(x.RequestPut.Key)] = true
		case *pb.RequestOp_RequestDeleteRange:
			ownDels = append(ownDels, keyRange{x.RequestDeleteRange.Key, x.RequestDeleteRange.RangeEnd})
		case *pb.RequestOp_RequestTxn:
			for _, nb := range [][]*pb.RequestOp{x.RequestTxn.Success, x.RequestTxn.Failure} {
				p, d, err := branchWrites(nb)
				if err != nil {
					return nil, nil, err
				}
				for k := range p {
					nestedPuts[k] = true
				}
				nestedDels = append(nestedDels, d...)
			}
		}
	}
	for k := range nestedPuts {
		if puts[k] || inRanges([]byte(k), ownDels) {
			return nil, nil, rpctypes.ErrGRPCDuplicateKey
		}
	}
	for k := range puts {
		if inRanges([]byte(k), ownDels) || inRanges([]byte(k), nestedDels) {
			return nil, nil, rpctypes.ErrGRPCDuplicateKey
		}
	}
	for k := range nestedPuts {
		puts[k] = true
	}
	return puts, append(ownDels, nestedDels...), nil
}

func inRanges(key []byte, rs []keyRange) bool {
	for _, r := range rs {
		if r.contains(key) {
			return true
		}
	}
	return false
}

// validSort reports whether a range's sort order and target are values
// the API defines (etcd refuses others with InvalidArgument).
func validSort(r *pb.RangeRequest) bool {
	_, order := pb.RangeRequest_SortOrder_name[int32(r.SortOrder)]
	_, target := pb.RangeRequest_SortTarget_name[int32(r.SortTarget)]
	return order && target
}
