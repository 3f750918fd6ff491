package mvcc

import (
	"errors"
	"fmt"
	"testing"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"google.golang.org/protobuf/proto"
)

func rng(key, end string, mod func(*pb.RangeRequest)) *pb.RequestOp {
	r := &pb.RangeRequest{Key: []byte(key), RangeEnd: bytesOrNil(end)}
	if mod != nil {
		mod(r)
	}
	return &pb.RequestOp{Request: &pb.RequestOp_RequestRange{RequestRange: r}}
}

func nested(t *pb.TxnRequest) *pb.RequestOp {
	return &pb.RequestOp{Request: &pb.RequestOp_RequestTxn{RequestTxn: t}}
}

func cmpOp(key string, target pb.Compare_CompareTarget, result pb.Compare_CompareResult, v any) *pb.Compare {
	c := &pb.Compare{Key: []byte(key), Target: target, Result: result}
	switch x := v.(type) {
	case string:
		c.TargetUnion = &pb.Compare_Value{Value: []byte(x)}
	case int64:
		switch target {
		case pb.Compare_VERSION:
			c.TargetUnion = &pb.Compare_Version{Version: x}
		case pb.Compare_CREATE:
			c.TargetUnion = &pb.Compare_CreateRevision{CreateRevision: x}
		case pb.Compare_MOD:
			c.TargetUnion = &pb.Compare_ModRevision{ModRevision: x}
		case pb.Compare_LEASE:
			c.TargetUnion = &pb.Compare_Lease{Lease: x}
		}
	}
	return c
}

// TestReadTxnEqualsBatchTxn: for a table of read-only txns, ReadTxn on the
// published state gives exactly what Batch.Txn gives applied at that
// point (response or error), and the batch path takes no revision.
func TestReadTxnEqualsBatchTxn(t *testing.T) {
	s := openTest(t)
	apply(t, s, func(b *Batch) {
		mustPut(t, b, "a", "1", 0)                                                         // 2
		mustPut(t, b, "b", "2", 7)                                                         // 3
		mustPut(t, b, "c", "3", 0)                                                         // 4
		mustPut(t, b, "a", "11", 0)                                                        // 5
		mustPut(t, b, "d", "4", 0)                                                         // 6
		mustPut(t, b, "pre/x", "x", 0)                                                     // 7
		mustPut(t, b, "pre/y", "y", 9)                                                     // 8
		mustPut(t, b, "pre/z", "z", 0)                                                     // 9
		if _, err := b.DeleteRange(&pb.DeleteRangeRequest{Key: []byte("d")}); err != nil { // 10
			t.Fatal(err)
		}
		mustPut(t, b, "e", "5", 0) // 11
	})
	if err := compact(s, 3); err != nil {
		t.Fatal(err)
	}
	eq, ne, gt, lt := pb.Compare_EQUAL, pb.Compare_NOT_EQUAL, pb.Compare_GREATER, pb.Compare_LESS
	val, ver, cre, mod, lse := pb.Compare_VALUE, pb.Compare_VERSION, pb.Compare_CREATE, pb.Compare_MOD, pb.Compare_LEASE
	all := func(r *pb.RangeRequest) {}
	tests := []*pb.TxnRequest{
		{}, // no compares, no ops
		{Compare: []*pb.Compare{cmpOp("a", val, eq, "11")}, Success: []*pb.RequestOp{rng("a", "", nil)}, Failure: []*pb.RequestOp{rng("b", "", nil)}},
		{Compare: []*pb.Compare{cmpOp("a", val, eq, "1")}, Success: []*pb.RequestOp{rng("a", "", nil)}, Failure: []*pb.RequestOp{rng("b", "", nil)}},
		{Compare: []*pb.Compare{cmpOp("a", ver, eq, int64(2)), cmpOp("b", lse, eq, int64(7))}, Success: []*pb.RequestOp{rng("a", "z", nil)}},
		{Compare: []*pb.Compare{cmpOp("a", cre, eq, int64(2)), cmpOp("a", mod, gt, int64(4))}, Success: []*pb.RequestOp{rng("pre/", "pre0", nil)}},
		{Compare: []*pb.Compare{cmpOp("d", ver, eq, int64(0))}, Success: []*pb.RequestOp{rng("d", "", nil)}}, // deleted key compares as 0
		{Compare: []*pb.Compare{cmpOp("d", val, eq, "")}, Failure: []*pb.RequestOp{rng("d", "", func(r *pb.RangeRequest) { r.Revision = 8 })}},
		{Compare: []*pb.Compare{cmpOp("missing", mod, lt, int64(1))}, Success: []*pb.RequestOp{rng("missing", "", nil)}},
		{Compare: []*pb.Compare{{Key: []byte("pre/"), RangeEnd: []byte("pre0"), Target: lse, Result: ne, TargetUnion: &pb.Compare_Lease{Lease: 9}}}, Failure: []*pb.RequestOp{rng("pre/", "pre0", nil)}},
		{Compare: []*pb.Compare{{Key: []byte("pre/"), RangeEnd: []byte("pre0"), Target: ver, Result: eq, TargetUnion: &pb.Compare_Version{Version: 1}}}, Success: []*pb.RequestOp{rng("pre/", "pre0", func(r *pb.RangeRequest) { r.CountOnly = true })}},
		{Success: []*pb.RequestOp{
			rng("a", "\x00", func(r *pb.RangeRequest) { r.Limit = 2 }),
			rng("a", "\x00", func(r *pb.RangeRequest) { r.KeysOnly = true }),
			rng("a", "\x00", func(r *pb.RangeRequest) { r.CountOnly = true }),
			rng("a", "\x00", func(r *pb.RangeRequest) {
				r.SortOrder = pb.RangeRequest_DESCEND
				r.SortTarget = pb.RangeRequest_MOD
				r.Limit = 3
			}),
			rng("a", "\x00", func(r *pb.RangeRequest) { r.MinModRevision = 5; r.MaxCreateRevision = 9 }),
			rng("a", "\x00", func(r *pb.RangeRequest) { r.Revision = 6 }),
			rng("\x00", "\x00", all),
		}},
		{Compare: []*pb.Compare{cmpOp("a", val, gt, "0")}, Success: []*pb.RequestOp{
			rng("a", "", nil),
			nested(&pb.TxnRequest{Compare: []*pb.Compare{cmpOp("c", val, eq, "nope")}, Success: []*pb.RequestOp{rng("c", "", nil)},
				Failure: []*pb.RequestOp{rng("e", "", nil), nested(&pb.TxnRequest{Compare: []*pb.Compare{cmpOp("e", ver, eq, int64(1))}, Success: []*pb.RequestOp{rng("pre/", "pre0", func(r *pb.RangeRequest) { r.KeysOnly = true })}})}}),
			nested(nil),
		}},
		// Request errors: a range at a compacted or future revision, also nested.
		{Success: []*pb.RequestOp{rng("a", "", func(r *pb.RangeRequest) { r.Revision = 2 })}},
		{Success: []*pb.RequestOp{rng("a", "", func(r *pb.RangeRequest) { r.Revision = 99 })}},
		{Success: []*pb.RequestOp{rng("a", "", nil), nested(&pb.TxnRequest{Success: []*pb.RequestOp{rng("a", "", func(r *pb.RangeRequest) { r.Revision = 1 })}})}},
	}
	for i, req := range tests {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			got, gerr := s.ReadTxn(req)
			b, err := s.Begin()
			if err != nil {
				t.Fatal(err)
			}
			want, werr := b.Txn(req)
			rev := b.Rev()
			b.Abort()
			if cur, _ := s.Rev(); rev != cur {
				t.Fatalf("the batch path took revision %d for a read-only txn (current %d)", rev, cur)
			}
			if (gerr == nil) != (werr == nil) {
				t.Fatalf("errors differ: read path %v, batch path %v", gerr, werr)
			}
			if werr != nil {
				for _, e := range []error{ErrCompacted, ErrFutureRev} {
					if errors.Is(werr, e) != errors.Is(gerr, e) {
						t.Fatalf("errors differ: read path %v, batch path %v", gerr, werr)
					}
				}
				return
			}
			if !proto.Equal(got, want) {
				t.Fatalf("responses differ:\nread  %v\nbatch %v", got, want)
			}
		})
	}
	if _, err := s.ReadTxn(&pb.TxnRequest{Failure: []*pb.RequestOp{nested(&pb.TxnRequest{Success: []*pb.RequestOp{{Request: &pb.RequestOp_RequestPut{RequestPut: &pb.PutRequest{Key: []byte("x")}}}}})}}); !errors.Is(err, ErrNotReadOnly) {
		t.Fatalf("ReadTxn of a txn with a nested put = %v, want ErrNotReadOnly", err)
	}
}
