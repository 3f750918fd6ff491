package mvcc

import (
	"errors"
	"slices"
	"testing"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
)

func opPut(k, v string) *pb.RequestOp {
	return &pb.RequestOp{Request: &pb.RequestOp_RequestPut{RequestPut: &pb.PutRequest{Key: []byte(k), Value: []byte(v)}}}
}

func opPutReq(p *pb.PutRequest) *pb.RequestOp {
	return &pb.RequestOp{Request: &pb.RequestOp_RequestPut{RequestPut: p}}
}

func opDel(k, end string) *pb.RequestOp {
	return &pb.RequestOp{Request: &pb.RequestOp_RequestDeleteRange{RequestDeleteRange: &pb.DeleteRangeRequest{Key: []byte(k), RangeEnd: bytesOrNil(end)}}}
}

func opRange(r *pb.RangeRequest) *pb.RequestOp {
	return &pb.RequestOp{Request: &pb.RequestOp_RequestRange{RequestRange: r}}
}

func opTxn(r *pb.TxnRequest) *pb.RequestOp {
	return &pb.RequestOp{Request: &pb.RequestOp_RequestTxn{RequestTxn: r}}
}

func cmpValue(k, end string, r pb.Compare_CompareResult, v string) *pb.Compare {
	return &pb.Compare{Key: []byte(k), RangeEnd: bytesOrNil(end), Target: pb.Compare_VALUE, Result: r, TargetUnion: &pb.Compare_Value{Value: []byte(v)}}
}

func cmpInt(k, end string, target pb.Compare_CompareTarget, r pb.Compare_CompareResult, n int64) *pb.Compare {
	c := &pb.Compare{Key: []byte(k), RangeEnd: bytesOrNil(end), Target: target, Result: r}
	switch target {
	case pb.Compare_VERSION:
		c.TargetUnion = &pb.Compare_Version{Version: n}
	case pb.Compare_CREATE:
		c.TargetUnion = &pb.Compare_CreateRevision{CreateRevision: n}
	case pb.Compare_MOD:
		c.TargetUnion = &pb.Compare_ModRevision{ModRevision: n}
	case pb.Compare_LEASE:
		c.TargetUnion = &pb.Compare_Lease{Lease: n}
	}
	return c
}

// txnFixture: a create 2 mod 3 ver 2 "2"; b create 4 mod 4 lease 7 "x"; c mod 5 "y".
func txnFixture(t *testing.T) *Store {
	s := openTest(t)
	put(t, s, "a", "1")
	put(t, s, "a", "2")
	apply(t, s, func(b *Batch) { mustPut(t, b, "b", "x", 7) })
	put(t, s, "c", "y")
	return s
}

func runTxn(t *testing.T, s *Store, req *pb.TxnRequest) (*pb.TxnResponse, error) {
	t.Helper()
	var resp *pb.TxnResponse
	var err error
	apply(t, s, func(b *Batch) { resp, err = b.Txn(req) })
	return resp, err
}

func TestTxnCompares(t *testing.T) {
	s := txnFixture(t)
	const (
		EQ  = pb.Compare_EQUAL
		NE  = pb.Compare_NOT_EQUAL
		GT  = pb.Compare_GREATER
		LT  = pb.Compare_LESS
		VER = pb.Compare_VERSION
		CRE = pb.Compare_CREATE
		MOD = pb.Compare_MOD
		LEA = pb.Compare_LEASE
	)
	tests := []struct {
		name string
		cmps []*pb.Compare
		want bool
	}{
		{"no compares", nil, true},
		{"value equal", []*pb.Compare{cmpValue("a", "", EQ, "2")}, true},
		{"value equal old", []*pb.Compare{cmpValue("a", "", EQ, "1")}, false},
		{"value not equal", []*pb.Compare{cmpValue("a", "", NE, "1")}, true},
		{"value greater", []*pb.Compare{cmpValue("a", "", GT, "1")}, true},
		{"value less", []*pb.Compare{cmpValue("a", "", LT, "3")}, true},
		{"value less false", []*pb.Compare{cmpValue("a", "", LT, "2")}, false},
		{"value of missing key equal empty", []*pb.Compare{cmpValue("zz", "", EQ, "")}, false},
		{"value of missing key not equal", []*pb.Compare{cmpValue("zz", "", NE, "x")}, false},
		{"version", []*pb.Compare{cmpInt("a", "", VER, EQ, 2)}, true},
		{"version greater", []*pb.Compare{cmpInt("a", "", VER, GT, 1)}, true},
		{"version less false", []*pb.Compare{cmpInt("a", "", VER, LT, 2)}, false},
		{"version of missing is 0", []*pb.Compare{cmpInt("zz", "", VER, EQ, 0)}, true},
		{"version of missing not > 0", []*pb.Compare{cmpInt("zz", "", VER, GT, 0)}, false},
		{"create", []*pb.Compare{cmpInt("a", "", CRE, EQ, 2)}, true},
		{"create greater", []*pb.Compare{cmpInt("b", "", CRE, GT, 3)}, true},
		{"create of missing is 0", []*pb.Compare{cmpInt("zz", "", CRE, EQ, 0)}, true},
		{"mod", []*pb.Compare{cmpInt("a", "", MOD, EQ, 3)}, true},
		{"mod less", []*pb.Compare{cmpInt("a", "", MOD, LT, 4)}, true},
		{"mod not equal false", []*pb.Compare{cmpInt("a", "", MOD, NE, 3)}, false},
		{"mod of missing is 0", []*pb.Compare{cmpInt("zz", "", MOD, LT, 1)}, true},
		{"lease", []*pb.Compare{cmpInt("b", "", LEA, EQ, 7)}, true},
		{"no lease is 0", []*pb.Compare{cmpInt("a", "", LEA, EQ, 0)}, true},
		{"lease not equal false", []*pb.Compare{cmpInt("b", "", LEA, NE, 7)}, false},
		{"lease of missing is 0", []*pb.Compare{cmpInt("zz", "", LEA, EQ, 0)}, true},
		{"range all satisfy", []*pb.Compare{cmpInt("a", "c", VER, GT, 0)}, true},
		{"range values all differ", []*pb.Compare{cmpValue("a", "d", NE, "zzz")}, true},
		{"range one fails", []*pb.Compare{cmpInt("a", "d", MOD, LT, 5)}, false},
		{"from-key range", []*pb.Compare{cmpInt("a", "\x00", CRE, GT, 1)}, true},
		{"empty range versions are 0", []*pb.Compare{cmpInt("m", "n", VER, EQ, 0)}, true},
		{"empty range value fails", []*pb.Compare{cmpValue("m", "n", EQ, "")}, false},
		{"all compares must hold", []*pb.Compare{cmpValue("a", "", EQ, "2"), cmpInt("a", "", VER, EQ, 1)}, false},
		{"mismatched operand counts as 0", []*pb.Compare{{Key: []byte("a"), Target: VER, Result: GT, TargetUnion: &pb.Compare_Value{Value: []byte("9")}}}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := runTxn(t, s, &pb.TxnRequest{Compare: tt.cmps})
			if err != nil {
				t.Fatal(err)
			}
			if resp.Succeeded != tt.want {
				t.Fatalf("succeeded = %v, want %v", resp.Succeeded, tt.want)
			}
			if resp.Header.Revision != 5 {
				t.Fatalf("read-only txn at revision %d, want 5", resp.Header.Revision)
			}
		})
	}
	if cur, _ := s.Rev(); cur != 5 {
		t.Fatalf("read-only txns changed the revision to %d", cur)
	}
}

func TestTxnExecution(t *testing.T) {
	s := txnFixture(t) // revision 5
	req := &pb.TxnRequest{
		Compare: []*pb.Compare{cmpValue("a", "", pb.Compare_EQUAL, "2")},
		Success: []*pb.RequestOp{
			opPut("x", "1"),
			opRange(&pb.RangeRequest{Key: []byte("x")}),
			opPut("x", "2"),
			opDel("c", ""),
			opRange(&pb.RangeRequest{Key: []byte{0}, RangeEnd: []byte{0}, CountOnly: true}),
			// Nested compares see the state before the outer txn: x is
			// missing there, so the nested failure branch runs.
			opTxn(&pb.TxnRequest{
				Compare: []*pb.Compare{cmpValue("x", "", pb.Compare_EQUAL, "1")},
				Success: []*pb.RequestOp{opPut("z", "nested-success")},
				Failure: []*pb.RequestOp{opPut("z", "nested-failure"), opRange(&pb.RangeRequest{Key: []byte("a"), Revision: 3})},
			}),
		},
		Failure: []*pb.RequestOp{opPut("never", "1")},
	}
	resp, err := runTxn(t, s, req)
	if err != nil {
		t.Fatal(err)
	}
	if !resp.Succeeded || resp.Header.Revision != 6 || len(resp.Responses) != 6 {
		t.Fatalf("txn resp = %v", resp)
	}
	r1 := resp.Responses[1].GetResponseRange()
	if len(r1.Kvs) != 1 || string(r1.Kvs[0].Value) != "1" || r1.Header.Revision != 6 {
		t.Fatalf("range inside txn should see the txn's first put: %v", r1)
	}
	if p := resp.Responses[2].GetResponsePut(); p.Header.Revision != 6 {
		t.Fatalf("put header revision %d", p.Header.Revision)
	}
	if d := resp.Responses[3].GetResponseDeleteRange(); d.Deleted != 1 || d.Header.Revision != 6 {
		t.Fatalf("delete resp %v", d)
	}
	if c := resp.Responses[4].GetResponseRange(); c.Count != 3 { // a, b, x
		t.Fatalf("count inside txn = %d, want 3", c.Count)
	}
	nested := resp.Responses[5].GetResponseTxn()
	if nested == nil || nested.Succeeded || len(nested.Responses) != 2 {
		t.Fatalf("nested resp %v", nested)
	}
	if hr := nested.Responses[1].GetResponseRange(); len(hr.Kvs) != 1 || string(hr.Kvs[0].Value) != "2" {
		t.Fatalf("historical range in nested txn: %v", hr)
	}
	if cur, _ := s.Rev(); cur != 6 {
		t.Fatalf("txn took revision %d, want exactly one (6)", cur)
	}
	// Every write shares main revision 6; sub revisions order them.
	if kv := get(t, s, "x", 0); stateOf(kv) != (kvState{6, 6, 2, 0, "2"}) {
		t.Fatalf("x = %+v", stateOf(kv))
	}
	if get(t, s, "c", 0) != nil || get(t, s, "c", 5) == nil || get(t, s, "never", 0) != nil {
		t.Fatal("wrong c/never state")
	}
	if kv := get(t, s, "z", 0); string(kv.Value) != "nested-failure" || kv.ModRevision != 6 {
		t.Fatalf("z = %v", kv)
	}
	var subs []int64
	s.tree.Ascend(func(ki *keyIndex) bool {
		for _, e := range ki.revs {
			if e.main == 6 {
				subs = append(subs, e.sub)
			}
		}
		return true
	})
	slices.Sort(subs)
	if !slices.Equal(subs, []int64{0, 1, 2, 3}) {
		t.Fatalf("sub revisions at 6 = %v, want [0 1 2 3]", subs)
	}

	// Failure branch, and branches that write nothing take no revision.
	resp, err = runTxn(t, s, &pb.TxnRequest{
		Compare: []*pb.Compare{cmpInt("x", "", pb.Compare_VERSION, pb.Compare_EQUAL, 1)},
		Failure: []*pb.RequestOp{opDel("nothing", ""), opRange(&pb.RangeRequest{Key: []byte("x")})},
	})
	if err != nil || resp.Succeeded || resp.Header.Revision != 6 {
		t.Fatalf("no-write failure branch = %v, %v", resp, err)
	}
	if d := resp.Responses[0].GetResponseDeleteRange(); d.Deleted != 0 || d.Header.Revision != 6 {
		t.Fatalf("no-op delete in txn = %v", d)
	}
	// ignore_value sees an earlier write of the same txn.
	resp, err = runTxn(t, s, &pb.TxnRequest{Success: []*pb.RequestOp{
		opPut("a", "new"),
		opPutReq(&pb.PutRequest{Key: []byte("a"), IgnoreValue: true, Lease: 5, PrevKv: true}),
	}})
	if err != nil || resp.Header.Revision != 7 {
		t.Fatalf("txn = %v, %v", resp, err)
	}
	if pk := resp.Responses[1].GetResponsePut().PrevKv; pk == nil || string(pk.Value) != "new" {
		t.Fatalf("prev kv inside txn = %v", pk)
	}
	if kv := get(t, s, "a", 0); stateOf(kv) != (kvState{2, 7, 4, 5, "new"}) {
		t.Fatalf("a = %+v", stateOf(kv))
	}
}

func TestTxnFailsAtomically(t *testing.T) {
	s := txnFixture(t) // revision 5
	apply(t, s, func(b *Batch) {
		if _, err := b.Compact(3); err != nil {
			t.Fatal(err)
		}
	})
	tests := []struct {
		name string
		req  *pb.TxnRequest
		want error
	}{
		{"ignore_value on missing key", &pb.TxnRequest{Success: []*pb.RequestOp{
			opPut("p", "1"), opPutReq(&pb.PutRequest{Key: []byte("missing"), IgnoreValue: true})}}, ErrKeyNotFound},
		{"ignore_lease after delete of the key", &pb.TxnRequest{Success: []*pb.RequestOp{
			opPut("p", "1"), opDel("a", "b"), opPutReq(&pb.PutRequest{Key: []byte("a"), Value: []byte("v"), IgnoreLease: true})}}, ErrKeyNotFound},
		{"ignore_value on key created in the same txn", &pb.TxnRequest{Success: []*pb.RequestOp{
			opPut("n", "1"), opPutReq(&pb.PutRequest{Key: []byte("n"), IgnoreValue: true})}}, ErrKeyNotFound},
		{"failure branch", &pb.TxnRequest{Compare: []*pb.Compare{cmpValue("a", "", pb.Compare_EQUAL, "no")}, Failure: []*pb.RequestOp{
			opDel("a", ""), opPutReq(&pb.PutRequest{Key: []byte("missing"), IgnoreLease: true})}}, ErrKeyNotFound},
		{"nested branch", &pb.TxnRequest{Success: []*pb.RequestOp{
			opPut("p", "1"), opTxn(&pb.TxnRequest{Success: []*pb.RequestOp{opPutReq(&pb.PutRequest{Key: []byte("missing"), IgnoreValue: true})}})}}, ErrKeyNotFound},
		{"future range revision", &pb.TxnRequest{Success: []*pb.RequestOp{
			opPut("p", "1"), opRange(&pb.RangeRequest{Key: []byte("a"), Revision: 6})}}, ErrFutureRev},
		{"compacted range revision", &pb.TxnRequest{Success: []*pb.RequestOp{
			opDel("a", ""), opRange(&pb.RangeRequest{Key: []byte("a"), Revision: 2})}}, ErrCompacted},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := storedRevs(t, s)
			b, err := s.Begin()
			if err != nil {
				t.Fatal(err)
			}
			if _, err := b.Txn(tt.req); !errors.Is(err, tt.want) {
				b.Abort()
				t.Fatalf("Txn = %v, want %v", err, tt.want)
			}
			if b.Rev() != 5 {
				t.Errorf("failed txn took a revision: %d", b.Rev())
			}
			if err := b.Commit(); err != nil {
				t.Fatal(err)
			}
			if after := storedRevs(t, s); !slices.Equal(after, before) {
				t.Fatalf("failed txn wrote to bbolt: %v -> %v", before, after)
			}
		})
	}
	// The batch stays usable after a failed txn and numbering is unaffected.
	apply(t, s, func(b *Batch) {
		if _, err := b.Txn(tests[0].req); err == nil {
			t.Fatal("txn should fail")
		}
		if r := mustPut(t, b, "after", "1", 0); r.Header.Revision != 6 {
			t.Fatalf("next put at %d, want 6", r.Header.Revision)
		}
	})
	if cur, _ := s.Rev(); cur != 6 || get(t, s, "p", 0) != nil || get(t, s, "a", 0) == nil || get(t, s, "n", 0) != nil {
		t.Fatal("a failed txn left writes behind")
	}
	// A failing op in the branch NOT taken does not matter.
	resp, err := runTxn(t, s, &pb.TxnRequest{Success: []*pb.RequestOp{opPut("p", "1")},
		Failure: []*pb.RequestOp{opPutReq(&pb.PutRequest{Key: []byte("missing"), IgnoreValue: true})}})
	if err != nil || !resp.Succeeded || get(t, s, "p", 0) == nil {
		t.Fatalf("txn = %v, %v", resp, err)
	}
}
