package mvcc

import (
	"context"
	"fmt"
	"path/filepath"
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
