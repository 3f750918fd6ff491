package mvcc

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"testing"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
)

func TestDefragmentShrinksAndKeepsData(t *testing.T) {
	s, err := Open(filepath.Join(t.TempDir(), "db"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	val := make([]byte, 4096)
	for i := 0; i < 2000; i++ {
		b, err := s.Begin()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := b.Put(&pb.PutRequest{Key: []byte(fmt.Sprintf("k%04d", i%50)), Value: val}); err != nil {
			t.Fatal(err)
		}
		b.SetApplied(uint64(i+1), 1)
		if err := b.Commit(); err != nil {
			t.Fatal(err)
		}
	}
	rev, _ := s.Rev()
	b, _ := s.Begin()
	if _, err := b.Compact(rev); err != nil {
		t.Fatal(err)
	}
	b.SetApplied(2001, 1)
	if err := b.Commit(); err != nil {
		t.Fatal(err)
	}
	// Compacted revisions are deleted in the background; defragmenting
	// gives back their space once they are (etcdctl compact --physical).
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	if err := s.WaitCompaction(ctx); err != nil {
		t.Fatal(err)
	}
	before, after, err := s.Defragment()
	if err != nil {
		t.Fatal(err)
	}
	if after >= before {
		t.Fatalf("defragment did not shrink the file: %d -> %d", before, after)
	}
	resp, err := s.Range(&pb.RangeRequest{Key: []byte("k"), RangeEnd: []byte("l"), CountOnly: true})
	if err != nil || resp.Count != 50 {
		t.Fatalf("after defragment: %v keys, err %v", resp, err)
	}
	if idx, _ := s.Applied(); idx != 2001 {
		t.Fatalf("applied index after defragment: %d", idx)
	}
	if r2, c2 := s.Rev(); r2 != rev || c2 != rev {
		t.Fatalf("revision after defragment: %d/%d, want %d/%d", r2, c2, rev, rev)
	}
}

// TestDefragmentKeepsTheIndexItDoesNotRebuild: Defragment keeps the
// in-memory index instead of rebuilding it from the new file, so that
// index must answer exactly as one rebuilt from the file does, with a
// background compaction still running across the swap and writes after it.
func TestDefragmentKeepsTheIndexItDoesNotRebuild(t *testing.T) {
	path := filepath.Join(t.TempDir(), "db")
	s, err := Open(path, Options{CompactionBatchLimit: 10})
	if err != nil {
		t.Fatal(err)
	}
	write := func(round int) {
		apply(t, s, func(b *Batch) {
			for k := range 200 {
				mustPut(t, b, fmt.Sprintf("k%03d", k), fmt.Sprintf("v%d", round), 0)
			}
		})
	}
	for round := range 5 {
		write(round)
	}
	mid, _ := s.Rev()
	for round := 5; round < 8; round++ {
		write(round)
	}
	apply(t, s, func(b *Batch) {
		if _, err := b.Compact(mid); err != nil {
			t.Fatal(err)
		}
	})
	// In steps of 10 revisions, the compaction is still running here.
	if _, _, err := s.Defragment(); err != nil {
		t.Fatal(err)
	}
	write(8)
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	if err := s.WaitCompaction(ctx); err != nil {
		t.Fatal(err)
	}
	cur, comp := s.Rev()
	answers := func(s *Store) []string {
		var out []string
		for rev := comp; rev <= cur; rev += 100 {
			resp, err := s.Range(&pb.RangeRequest{Key: []byte("k"), RangeEnd: []byte("l"), Revision: rev})
			if err != nil {
				t.Fatalf("range at %d: %v", rev, err)
			}
			for _, kv := range resp.Kvs {
				out = append(out, fmt.Sprintf("%d:%s=%s c%d m%d v%d", rev, kv.Key, kv.Value, kv.CreateRevision, kv.ModRevision, kv.Version))
			}
		}
		return out
	}
	kept := answers(s)
	if _, err := s.Range(&pb.RangeRequest{Key: []byte("k000"), Revision: comp - 1}); !errors.Is(err, ErrCompacted) {
		t.Fatalf("range below the compaction: %v, want ErrCompacted", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s2, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	if r2, c2 := s2.Rev(); r2 != cur || c2 != comp {
		t.Fatalf("reopened at %d/%d, the kept index was at %d/%d", r2, c2, cur, comp)
	}
	rebuilt := answers(s2)
	if len(kept) == 0 || !slices.Equal(kept, rebuilt) {
		t.Fatalf("the kept index answers %d lines, a rebuilt one %d; first difference at %v", len(kept), len(rebuilt), firstDiff(kept, rebuilt))
	}
}

func firstDiff(a, b []string) string {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return fmt.Sprintf("%q != %q", a[i], b[i])
		}
	}
	return "the end of the shorter"
}
