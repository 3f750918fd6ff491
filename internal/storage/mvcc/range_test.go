package mvcc

import (
	"errors"
	"slices"
	"testing"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
)

// rangeFixture builds, one revision per put:
//
//	a: create 2 mod 2 ver 1 "va"
//	b: create 3 mod 5 ver 2 "vb2"  ("vb" at revisions 3-4)
//	c: create 4 mod 8 ver 3 "vc3"
//	d: create 6 mod 6 ver 1 "a-first"
//	e: create 9 mod 9 ver 1 "ve"
func rangeFixture(t *testing.T) *Store {
	s := openTest(t)
	for _, kv := range [][2]string{{"a", "va"}, {"b", "vb"}, {"c", "vc"}, {"b", "vb2"}, {"d", "a-first"}, {"c", "vc2"}, {"c", "vc3"}, {"e", "ve"}} {
		put(t, s, kv[0], kv[1])
	}
	return s
}

func TestRangeOptions(t *testing.T) {
	s := rangeFixture(t)
	all := func(r *pb.RangeRequest) *pb.RangeRequest {
		r.Key, r.RangeEnd = []byte{0}, []byte{0}
		return r
	}
	tests := []struct {
		name     string
		req      *pb.RangeRequest
		keys     []string
		count    int64
		more     bool
		wantVals []string // checked when non-nil
		keysOnly bool     // all values must be empty
		wantMods []int64  // checked when non-nil
		wantVers []int64  // checked when non-nil
	}{
		{name: "single key", req: &pb.RangeRequest{Key: []byte("b")}, keys: []string{"b"}, count: 1, wantVals: []string{"vb2"}, wantVers: []int64{2}},
		{name: "missing key", req: &pb.RangeRequest{Key: []byte("zz")}, keys: []string{}, count: 0},
		{name: "half-open range", req: &pb.RangeRequest{Key: []byte("b"), RangeEnd: []byte("d")}, keys: []string{"b", "c"}, count: 2},
		{name: "prefix-like range", req: &pb.RangeRequest{Key: []byte("c"), RangeEnd: []byte("c\x00")}, keys: []string{"c"}, count: 1},
		{name: "from key", req: &pb.RangeRequest{Key: []byte("c"), RangeEnd: []byte{0}}, keys: []string{"c", "d", "e"}, count: 3},
		{name: "all keys", req: all(&pb.RangeRequest{}), keys: []string{"a", "b", "c", "d", "e"}, count: 5},
		{name: "end before key", req: &pb.RangeRequest{Key: []byte("d"), RangeEnd: []byte("b")}, keys: []string{}, count: 0},
		{name: "limit", req: all(&pb.RangeRequest{Limit: 2}), keys: []string{"a", "b"}, count: 5, more: true},
		{name: "limit equal to count", req: all(&pb.RangeRequest{Limit: 5}), keys: []string{"a", "b", "c", "d", "e"}, count: 5},
		{name: "limit above count", req: all(&pb.RangeRequest{Limit: 6}), keys: []string{"a", "b", "c", "d", "e"}, count: 5},
		{name: "sort before limit", req: all(&pb.RangeRequest{Limit: 2, SortOrder: pb.RangeRequest_DESCEND, SortTarget: pb.RangeRequest_VERSION}),
			keys: []string{"c", "b"}, count: 5, more: true, wantVers: []int64{3, 2}},
		{name: "order NONE with target VERSION ascends", req: all(&pb.RangeRequest{SortTarget: pb.RangeRequest_VERSION}),
			keys: []string{"a", "d", "e", "b", "c"}, count: 5},
		{name: "key ascend", req: all(&pb.RangeRequest{SortOrder: pb.RangeRequest_ASCEND}), keys: []string{"a", "b", "c", "d", "e"}, count: 5},
		{name: "key descend", req: all(&pb.RangeRequest{SortOrder: pb.RangeRequest_DESCEND}), keys: []string{"e", "d", "c", "b", "a"}, count: 5},
		{name: "key descend limit", req: all(&pb.RangeRequest{Limit: 1, SortOrder: pb.RangeRequest_DESCEND}), keys: []string{"e"}, count: 5, more: true},
		{name: "create descend", req: all(&pb.RangeRequest{SortOrder: pb.RangeRequest_DESCEND, SortTarget: pb.RangeRequest_CREATE}), keys: []string{"e", "d", "c", "b", "a"}, count: 5},
		{name: "mod ascend", req: all(&pb.RangeRequest{SortOrder: pb.RangeRequest_ASCEND, SortTarget: pb.RangeRequest_MOD}),
			keys: []string{"a", "b", "d", "c", "e"}, count: 5, wantMods: []int64{2, 5, 6, 8, 9}},
		{name: "value ascend", req: all(&pb.RangeRequest{SortOrder: pb.RangeRequest_ASCEND, SortTarget: pb.RangeRequest_VALUE}),
			keys: []string{"d", "a", "b", "c", "e"}, count: 5},
		{name: "value descend keys only", req: all(&pb.RangeRequest{KeysOnly: true, SortOrder: pb.RangeRequest_DESCEND, SortTarget: pb.RangeRequest_VALUE}),
			keys: []string{"e", "c", "b", "a", "d"}, count: 5, keysOnly: true},
		{name: "keys only", req: all(&pb.RangeRequest{KeysOnly: true}), keys: []string{"a", "b", "c", "d", "e"}, count: 5, keysOnly: true,
			wantMods: []int64{2, 5, 8, 6, 9}},
		{name: "count only", req: all(&pb.RangeRequest{CountOnly: true}), keys: []string{}, count: 5},
		{name: "count only with limit", req: all(&pb.RangeRequest{CountOnly: true, Limit: 1}), keys: []string{}, count: 5},
		{name: "min mod", req: all(&pb.RangeRequest{MinModRevision: 5}), keys: []string{"b", "c", "d", "e"}, count: 5},
		{name: "max mod", req: all(&pb.RangeRequest{MaxModRevision: 5}), keys: []string{"a", "b"}, count: 5},
		{name: "create window", req: all(&pb.RangeRequest{MinCreateRevision: 4, MaxCreateRevision: 6}), keys: []string{"c", "d"}, count: 5},
		{name: "filter then limit", req: all(&pb.RangeRequest{MinModRevision: 5, Limit: 2}), keys: []string{"b", "c"}, count: 5, more: true},
		{name: "filter leaves exactly limit", req: all(&pb.RangeRequest{MaxCreateRevision: 3, Limit: 2}), keys: []string{"a", "b"}, count: 5},
		{name: "filter sort limit", req: all(&pb.RangeRequest{MinModRevision: 5, Limit: 2, SortOrder: pb.RangeRequest_DESCEND, SortTarget: pb.RangeRequest_MOD}),
			keys: []string{"e", "c"}, count: 5, more: true},
		{name: "historical", req: all(&pb.RangeRequest{Revision: 4}), keys: []string{"a", "b", "c"}, count: 3,
			wantVals: []string{"va", "vb", "vc"}, wantVers: []int64{1, 1, 1}},
		{name: "historical single key", req: &pb.RangeRequest{Key: []byte("c"), Revision: 7}, keys: []string{"c"}, count: 1,
			wantVals: []string{"vc2"}, wantMods: []int64{7}},
		{name: "before key existed", req: &pb.RangeRequest{Key: []byte("e"), Revision: 8}, keys: []string{}, count: 0},
		{name: "initial revision", req: all(&pb.RangeRequest{Revision: 1}), keys: []string{}, count: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := s.Range(tt.req)
			if err != nil {
				t.Fatal(err)
			}
			if got := keysOf(resp.Kvs); !slices.Equal(got, tt.keys) {
				t.Errorf("keys = %v, want %v", got, tt.keys)
			}
			if resp.Count != tt.count || resp.More != tt.more {
				t.Errorf("count, more = %d, %v; want %d, %v", resp.Count, resp.More, tt.count, tt.more)
			}
			if resp.Header.Revision != 9 {
				t.Errorf("header revision = %d, want 9 (current)", resp.Header.Revision)
			}
			for i, kv := range resp.Kvs {
				if tt.keysOnly && kv.Value != nil {
					t.Errorf("keys_only returned value %q", kv.Value)
				}
				if !tt.keysOnly && len(kv.Value) == 0 {
					t.Errorf("%s has no value", kv.Key)
				}
				if tt.wantVals != nil && string(kv.Value) != tt.wantVals[i] {
					t.Errorf("%s value = %q, want %q", kv.Key, kv.Value, tt.wantVals[i])
				}
				if tt.wantMods != nil && kv.ModRevision != tt.wantMods[i] {
					t.Errorf("%s mod = %d, want %d", kv.Key, kv.ModRevision, tt.wantMods[i])
				}
				if tt.wantVers != nil && kv.Version != tt.wantVers[i] {
					t.Errorf("%s version = %d, want %d", kv.Key, kv.Version, tt.wantVers[i])
				}
			}
		})
	}
}

func TestRangeRevisionErrors(t *testing.T) {
	s := rangeFixture(t)
	apply(t, s, func(b *Batch) {
		if _, err := b.Compact(5); err != nil {
			t.Fatal(err)
		}
	})
	tests := []struct {
		rev  int64
		want error
	}{
		{10, ErrFutureRev},
		{4, ErrCompacted},
		{1, ErrCompacted},
		{5, nil},
		{9, nil},
		{0, nil},
		{-1, nil}, // negative means current, as in etcd
	}
	for _, tt := range tests {
		_, err := s.Range(&pb.RangeRequest{Key: []byte("a"), Revision: tt.rev})
		if !errors.Is(err, tt.want) || (tt.want == nil && err != nil) {
			t.Errorf("Range at %d = %v, want %v", tt.rev, err, tt.want)
		}
	}
}
