package mvcc

import (
	"context"
	"errors"
	"path/filepath"
	"slices"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
)

// storedRevs lists the revision mains left in the kv bucket once the
// background compaction has finished.
func storedRevs(t *testing.T, s *Store) []int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := s.WaitCompaction(ctx); err != nil {
		t.Fatalf("WaitCompaction: %v", err)
	}
	var out []int64
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketKV).ForEach(func(k, _ []byte) error {
			r, _, err := parseRevKey(k)
			out = append(out, r.main)
			return err
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func compact(s *Store, rev int64) error {
	b, err := s.Begin()
	if err != nil {
		return err
	}
	if _, err := b.Compact(rev); err != nil {
		b.Abort()
		return err
	}
	return b.Commit()
}

func TestCompaction(t *testing.T) {
	path := filepath.Join(t.TempDir(), "db")
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	put(t, s, "a", "v1") // 2
	put(t, s, "a", "v2") // 3
	put(t, s, "b", "b1") // 4
	del(t, s, "b", "")   // 5
	put(t, s, "a", "v3") // 6
	put(t, s, "c", "c1") // 7
	del(t, s, "c", "")   // 8
	if got := storedRevs(t, s); !slices.Equal(got, []int64{2, 3, 4, 5, 6, 7, 8}) {
		t.Fatalf("before compaction kv holds %v", got)
	}
	if err := compact(s, 6); err != nil {
		t.Fatal(err)
	}
	// a keeps its write at 6; b (deleted at 5) is gone; c is newer than 6.
	if got := storedRevs(t, s); !slices.Equal(got, []int64{6, 7, 8}) {
		t.Fatalf("after compaction kv holds %v, want [6 7 8]", got)
	}
	verify := func(when string) {
		t.Helper()
		if cur, comp := s.Rev(); cur != 8 || comp != 6 {
			t.Fatalf("%s: Rev = %d, %d; want 8, 6", when, cur, comp)
		}
		if kv := get(t, s, "a", 6); kv == nil || string(kv.Value) != "v3" || kv.Version != 3 || kv.CreateRevision != 2 {
			t.Fatalf("%s: a at compact revision = %v", when, kv)
		}
		if get(t, s, "b", 6) != nil || get(t, s, "c", 6) != nil || get(t, s, "c", 7) == nil || get(t, s, "c", 8) != nil {
			t.Fatalf("%s: wrong b/c history after compaction", when)
		}
		if _, err := s.Range(&pb.RangeRequest{Key: []byte("a"), Revision: 5}); !errors.Is(err, ErrCompacted) {
			t.Fatalf("%s: Range below compacted = %v, want ErrCompacted", when, err)
		}
		r, err := s.Range(&pb.RangeRequest{Key: []byte{0}, RangeEnd: []byte{0}, CountOnly: true, Revision: 7})
		if err != nil || r.Count != 2 {
			t.Fatalf("%s: count at 7 = %v, %v; want 2", when, r, err)
		}
	}
	verify("after compaction")
	for _, tt := range []struct {
		rev  int64
		want error
	}{{6, ErrCompacted}, {5, ErrCompacted}, {9, ErrFutureRev}} {
		if err := compact(s, tt.rev); !errors.Is(err, tt.want) {
			t.Fatalf("Compact(%d) = %v, want %v", tt.rev, err, tt.want)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if s, err = Open(path, Options{}); err != nil {
		t.Fatal(err)
	}
	defer func() { s.Close() }()
	verify("after reopen")

	// Compacting at the newest write (a tombstone) keeps that tombstone
	// (a watch from 8 must see the deletion, as in etcd's issue 18089) and
	// does not lose the current revision, in memory or after reopen.
	if err := compact(s, 8); err != nil {
		t.Fatal(err)
	}
	if got := storedRevs(t, s); !slices.Equal(got, []int64{6, 8}) {
		t.Fatalf("kv holds %v, want [6 8]", got)
	}
	if r, err := s.Range(&pb.RangeRequest{Key: []byte{0}, RangeEnd: []byte{0}, CountOnly: true}); err != nil || r.Count != 1 {
		t.Fatalf("count after compacting at a deletion = %v, %v; want 1 (the tombstone is not a key)", r, err)
	}
	s.Close()
	if s, err = Open(path, Options{}); err != nil {
		t.Fatal(err)
	}
	if cur, comp := s.Rev(); cur != 8 || comp != 8 {
		t.Fatalf("Rev after reopen = %d, %d; want 8, 8", cur, comp)
	}
	if r := put(t, s, "c", "c2"); r != 9 || get(t, s, "c", 0).CreateRevision != 9 {
		t.Fatalf("put after compaction at %d", r)
	}
}

// TestCompactInsideBatch compacts in the same batch as writes, then reads
// inside the batch and after commit.
func TestCompactInsideBatch(t *testing.T) {
	s := openTest(t)
	apply(t, s, func(b *Batch) {
		mustPut(t, b, "k", "1", 0) // 2
		mustPut(t, b, "k", "2", 0) // 3
		resp, err := b.Compact(3)
		if err != nil || resp.Header.Revision != 3 {
			t.Fatalf("Compact = %v, %v", resp, err)
		}
		if _, err := b.Range(&pb.RangeRequest{Key: []byte("k"), Revision: 2}); !errors.Is(err, ErrCompacted) {
			t.Fatalf("batch Range below compaction = %v", err)
		}
		mustPut(t, b, "k", "3", 0) // 4
	})
	if kv := get(t, s, "k", 0); kv.Version != 3 || kv.ModRevision != 4 || kv.CreateRevision != 2 {
		t.Fatalf("k = %v", kv)
	}
	if got := storedRevs(t, s); !slices.Equal(got, []int64{3, 4}) {
		t.Fatalf("kv holds %v", got)
	}
}
