package api

import (
	"errors"
	"fmt"
	"testing"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
)

func put(k string) *pb.RequestOp {
	return &pb.RequestOp{Request: &pb.RequestOp_RequestPut{RequestPut: &pb.PutRequest{Key: []byte(k), Value: []byte("v")}}}
}

func del(k, end string) *pb.RequestOp {
	return &pb.RequestOp{Request: &pb.RequestOp_RequestDeleteRange{RequestDeleteRange: &pb.DeleteRangeRequest{Key: []byte(k), RangeEnd: []byte(end)}}}
}

func get(k string) *pb.RequestOp {
	return &pb.RequestOp{Request: &pb.RequestOp_RequestRange{RequestRange: &pb.RangeRequest{Key: []byte(k)}}}
}

func txn(success, failure []*pb.RequestOp) *pb.RequestOp {
	return &pb.RequestOp{Request: &pb.RequestOp_RequestTxn{RequestTxn: &pb.TxnRequest{Success: success, Failure: failure}}}
}

func TestCheckTxn(t *testing.T) {
	many := make([]*pb.RequestOp, 129)
	for i := range many {
		many[i] = get("k")
	}
	tests := []struct {
		name string
		req  *pb.TxnRequest
		want error
	}{
		{"ok", &pb.TxnRequest{Success: []*pb.RequestOp{put("a"), put("b"), get("a")}}, nil},
		{"too many ops", &pb.TxnRequest{Success: many}, rpctypes.ErrGRPCTooManyOps},
		{"same key twice", &pb.TxnRequest{Success: []*pb.RequestOp{put("a"), put("a")}}, rpctypes.ErrGRPCDuplicateKey},
		{"op without a request", &pb.TxnRequest{Failure: []*pb.RequestOp{get("a"), {}}}, rpctypes.ErrGRPCKeyNotFound},
		{"same key in other branch is fine", &pb.TxnRequest{Success: []*pb.RequestOp{put("a")}, Failure: []*pb.RequestOp{put("a")}}, nil},
		{"put inside deleted range", &pb.TxnRequest{Success: []*pb.RequestOp{del("a", "c"), put("b")}}, rpctypes.ErrGRPCDuplicateKey},
		{"put beside deleted range", &pb.TxnRequest{Success: []*pb.RequestOp{del("a", "c"), put("c")}}, nil},
		{"put inside from-key delete", &pb.TxnRequest{Success: []*pb.RequestOp{del("a", "\x00"), put("zzz")}}, rpctypes.ErrGRPCDuplicateKey},
		{"overlapping deletes are fine", &pb.TxnRequest{Success: []*pb.RequestOp{del("a", "c"), del("b", "d")}}, nil},
		{"nested put clashes with outer put", &pb.TxnRequest{Success: []*pb.RequestOp{put("a"), txn([]*pb.RequestOp{put("a")}, nil)}}, rpctypes.ErrGRPCDuplicateKey},
		{"nested branches may share keys", &pb.TxnRequest{Success: []*pb.RequestOp{txn([]*pb.RequestOp{put("a")}, []*pb.RequestOp{del("a", "")})}}, nil},
		{"nested delete covers outer put", &pb.TxnRequest{Success: []*pb.RequestOp{put("a"), txn(nil, []*pb.RequestOp{del("a", "")})}}, rpctypes.ErrGRPCDuplicateKey},
		{"empty key in nested op", &pb.TxnRequest{Success: []*pb.RequestOp{txn([]*pb.RequestOp{get("")}, nil)}}, rpctypes.ErrGRPCEmptyKey},
		{"empty compare key", &pb.TxnRequest{Compare: []*pb.Compare{{}}}, rpctypes.ErrGRPCEmptyKey},
		{"full flat txn", &pb.TxnRequest{Compare: compares(128), Success: puts("s", 128), Failure: puts("f", 128)}, nil},
		{"128 nested txns of 128 puts each", &pb.TxnRequest{Success: nestedWide(128, 128)}, rpctypes.ErrGRPCTooManyOps},
		{"nested within what the parent leaves", &pb.TxnRequest{Success: nestedWide(2, 100)}, nil},
		{"nested over what the parent leaves", &pb.TxnRequest{Success: nestedWide(2, 127)}, rpctypes.ErrGRPCTooManyOps},
		{"5000 deep", nestedDeep(5000), rpctypes.ErrGRPCTooManyOps},
		{"64 deep", nestedDeep(64), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := checkTxn(tt.req, 128); !errors.Is(err, tt.want) {
				t.Fatalf("got %v, want %v", err, tt.want)
			}
		})
	}
}

func puts(prefix string, n int) []*pb.RequestOp {
	ops := make([]*pb.RequestOp, n)
	for i := range ops {
		ops[i] = put(fmt.Sprintf("%s%d", prefix, i))
	}
	return ops
}

func compares(n int) []*pb.Compare {
	cs := make([]*pb.Compare, n)
	for i := range cs {
		cs[i] = &pb.Compare{Key: []byte("c")}
	}
	return cs
}

// nestedWide is n nested txns, each with m puts of its own keys.
func nestedWide(n, m int) []*pb.RequestOp {
	ops := make([]*pb.RequestOp, n)
	for i := range ops {
		ops[i] = txn(puts(fmt.Sprintf("n%d/", i), m), nil)
	}
	return ops
}

func nestedDeep(depth int) *pb.TxnRequest {
	r := &pb.TxnRequest{Success: []*pb.RequestOp{put("leaf")}}
	for range depth {
		r = &pb.TxnRequest{Success: []*pb.RequestOp{{Request: &pb.RequestOp_RequestTxn{RequestTxn: r}}}}
	}
	return r
}

// A request the size checks refuse costs no more than the bound to refuse:
// the deepest nesting protobuf allows is refused without walking it.
func BenchmarkCheckTxnDeep(b *testing.B) {
	r := nestedDeep(5000)
	for b.Loop() {
		if checkTxn(r, 128) == nil {
			b.Fatal("accepted")
		}
	}
}

func TestCheckPut(t *testing.T) {
	tests := []struct {
		req  *pb.PutRequest
		want error
	}{
		{&pb.PutRequest{Key: []byte("a")}, nil},
		{&pb.PutRequest{}, rpctypes.ErrGRPCEmptyKey},
		{&pb.PutRequest{Key: []byte("a"), IgnoreValue: true, Value: []byte("x")}, rpctypes.ErrGRPCValueProvided},
		{&pb.PutRequest{Key: []byte("a"), IgnoreLease: true, Lease: 5}, rpctypes.ErrGRPCLeaseProvided},
	}
	for i, tt := range tests {
		if err := checkPut(tt.req); !errors.Is(err, tt.want) {
			t.Fatalf("case %d: got %v, want %v", i, err, tt.want)
		}
	}
}
