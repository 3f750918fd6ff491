package mvcc

import (
	"path/filepath"
	"testing"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
)

func openTest(t testing.TB) *Store {
	t.Helper()
	s, err := Open(filepath.Join(t.TempDir(), "member", "db"), Options{})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// apply runs fn in one Batch and commits it.
func apply(t testing.TB, s *Store, fn func(b *Batch)) {
	t.Helper()
	b, err := s.Begin()
	if err != nil {
		t.Fatalf("Begin: %v", err)
	}
	fn(b)
	if err := b.Commit(); err != nil {
		t.Fatalf("Commit: %v", err)
	}
}

func mustPut(t testing.TB, b *Batch, key, val string, lease int64) *pb.PutResponse {
	t.Helper()
	resp, err := b.Put(&pb.PutRequest{Key: []byte(key), Value: []byte(val), Lease: lease})
	if err != nil {
		t.Fatalf("Put(%q): %v", key, err)
	}
	return resp
}

func put(t testing.TB, s *Store, key, val string) int64 {
	t.Helper()
	var rev int64
	apply(t, s, func(b *Batch) { rev = mustPut(t, b, key, val, 0).Header.Revision })
	return rev
}

func del(t testing.TB, s *Store, key, end string) *pb.DeleteRangeResponse {
	t.Helper()
	var resp *pb.DeleteRangeResponse
	apply(t, s, func(b *Batch) {
		var err error
		resp, err = b.DeleteRange(&pb.DeleteRangeRequest{Key: []byte(key), RangeEnd: bytesOrNil(end), PrevKv: true})
		if err != nil {
			t.Fatalf("DeleteRange: %v", err)
		}
	})
	return resp
}

func bytesOrNil(s string) []byte {
	if s == "" {
		return nil
	}
	return []byte(s)
}

// get returns key at rev (0 = current) or nil.
func get(t testing.TB, s *Store, key string, rev int64) *mvccpb.KeyValue {
	t.Helper()
	resp, err := s.Range(&pb.RangeRequest{Key: []byte(key), Revision: rev})
	if err != nil {
		t.Fatalf("Range(%q@%d): %v", key, rev, err)
	}
	switch len(resp.Kvs) {
	case 0:
		return nil
	case 1:
		return resp.Kvs[0]
	}
	t.Fatalf("Range(%q) returned %d kvs", key, len(resp.Kvs))
	return nil
}

type kvState struct {
	create, mod, ver, lease int64
	val                     string
}

func stateOf(kv *mvccpb.KeyValue) kvState {
	return kvState{kv.CreateRevision, kv.ModRevision, kv.Version, kv.Lease, string(kv.Value)}
}

func keysOf(kvs []*mvccpb.KeyValue) []string {
	out := []string{}
	for _, kv := range kvs {
		out = append(out, string(kv.Key))
	}
	return out
}
