package mvcc

import (
	"bytes"
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
)

// openDeferred opens a store whose commits are deferred for an hour (so
// only explicit triggers commit) and counts bbolt commits.
func openDeferred(t *testing.T, path string, ops int) (*Store, *atomic.Int64) {
	t.Helper()
	var commits atomic.Int64
	s, err := Open(path, Options{CommitInterval: time.Hour, CommitOps: ops,
		OnCommit: func(time.Duration) { commits.Add(1) }})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return s, &commits
}

func putApplied(t *testing.T, s *Store, key, val string, index uint64) {
	t.Helper()
	apply(t, s, func(b *Batch) {
		mustPut(t, b, key, val, 0)
		b.SetApplied(index, 1)
	})
}

func rangeVal(t *testing.T, s *Store, key string) string {
	t.Helper()
	resp, err := s.Range(&pb.RangeRequest{Key: []byte(key)})
	if err != nil {
		t.Fatalf("Range(%q): %v", key, err)
	}
	if len(resp.Kvs) != 1 {
		return "<missing>"
	}
	return string(resp.Kvs[0].Value)
}

// Published but uncommitted batches are read by Range, prefix ranges and
// KeysWithLease (read-your-writes), cost no bbolt commit, and are all in the
// file after Flush and after a reopen.
func TestDeferredReadYourWritesThenFlush(t *testing.T) {
	path := filepath.Join(t.TempDir(), "db")
	s, commits := openDeferred(t, path, 0)
	for i := 1; i <= 50; i++ {
		putApplied(t, s, fmt.Sprintf("k%02d", i%10), fmt.Sprintf("v%d", i), uint64(i))
		if got, want := rangeVal(t, s, fmt.Sprintf("k%02d", i%10)), fmt.Sprintf("v%d", i); got != want {
			t.Fatalf("after put %d: read %q, want %q", i, got, want)
		}
	}
	if n := commits.Load(); n != 0 {
		t.Fatalf("%d bbolt commits for 50 deferred batches, want 0", n)
	}
	resp, err := s.Range(&pb.RangeRequest{Key: []byte("k"), RangeEnd: []byte("l")})
	if err != nil || resp.Count != 10 || len(resp.Kvs) != 10 || string(resp.Kvs[0].Value) != "v50" {
		t.Fatalf("prefix range = %v, %v; want 10 keys, k00=v50", resp, err)
	}
	// An older revision is still read from the overlay.
	old, err := s.Range(&pb.RangeRequest{Key: []byte("k01"), Revision: 2})
	if err != nil || len(old.Kvs) != 1 || string(old.Kvs[0].Value) != "v1" {
		t.Fatalf("range at revision 2 = %v, %v; want k01=v1", old, err)
	}
	if idx, _ := s.Applied(); idx != 50 {
		t.Fatalf("Applied = %d, want 50 (published before the commit)", idx)
	}
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	if n := commits.Load(); n != 1 {
		t.Fatalf("%d commits after Flush, want 1", n)
	}
	if got := rangeVal(t, s, "k05"); got != "v45" {
		t.Fatalf("after flush read %q, want v45", got)
	}
	putApplied(t, s, "late", "x", 51)
	if err := s.Close(); err != nil { // commits "late"
		t.Fatal(err)
	}
	s2, _ := openDeferred(t, path, 0)
	defer s2.Close()
	if idx, _ := s2.Applied(); idx != 51 {
		t.Fatalf("reopened Applied = %d, want 51", idx)
	}
	if got := rangeVal(t, s2, "late"); got != "x" {
		t.Fatalf("reopened read %q, want x", got)
	}
}

// Meta changes, compaction, Sync and the CommitOps limit commit with their
// batch; OpenSnapshot and HashKV see every published batch.
func TestDeferredCommitTriggers(t *testing.T) {
	path := filepath.Join(t.TempDir(), "db")
	s, commits := openDeferred(t, path, 5)
	defer s.Close()
	step := func(name string, want int64, fn func(b *Batch)) {
		t.Helper()
		before := commits.Load()
		apply(t, s, fn)
		if got := commits.Load() - before; got != want {
			t.Fatalf("%s: %d commits, want %d", name, got, want)
		}
	}
	step("put", 0, func(b *Batch) { mustPut(t, b, "a", "1", 0) })
	step("meta", 1, func(b *Batch) { mustPut(t, b, "a", "2", 0); b.SetMeta("m", []byte("x")) })
	if v, _ := s.Meta("m"); string(v) != "x" {
		t.Fatalf("Meta = %q, want x", v)
	}
	step("put", 0, func(b *Batch) { mustPut(t, b, "a", "3", 0) })
	step("sync", 1, func(b *Batch) { mustPut(t, b, "a", "4", 0); b.Sync() })
	step("put", 0, func(b *Batch) { mustPut(t, b, "b", "1", 0) })
	step("compact", 1, func(b *Batch) {
		if _, err := b.Compact(b.Rev()); err != nil {
			t.Fatal(err)
		}
	})
	// The compactor's deletions share the write transaction and commit
	// when it finishes: let it finish before counting again.
	wctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	if err := s.WaitCompaction(wctx); err != nil {
		t.Fatal(err)
	}
	for i := range 4 {
		step("put under the ops limit", 0, func(b *Batch) { mustPut(t, b, "c", fmt.Sprint(i), 0) })
	}
	step("put reaching the ops limit", 1, func(b *Batch) { mustPut(t, b, "c", "4", 0) })

	step("put", 0, func(b *Batch) { mustPut(t, b, "snap", "1", 0); b.SetApplied(99, 3) })
	sn, err := s.OpenSnapshot()
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if _, err := sn.WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	sn.Close()
	if sn.Index != 99 || sn.Term != 3 {
		t.Fatalf("snapshot covers %d/%d, want 99/3 (the published batch)", sn.Index, sn.Term)
	}
	step("put", 0, func(b *Batch) { mustPut(t, b, "h", "1", 0) })
	cur, _ := s.Rev()
	if _, hashRev, _, err := s.HashKV(0); err != nil || hashRev != cur {
		t.Fatalf("HashKV = rev %d, %v; want %d", hashRev, err, cur)
	}
}

// A watcher catching up from history gets the events that are only in the
// uncommitted overlay, in order, without gaps or duplicates.
func TestDeferredWatchHistoryReadsOverlay(t *testing.T) {
	s, _ := openDeferred(t, filepath.Join(t.TempDir(), "db"), 0)
	defer s.Close()
	put(t, s, "a", "0") // 2
	put(t, s, "b", "1") // 3
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	put(t, s, "a", "2") // 4, overlay from here
	del(t, s, "b", "")  // 5
	put(t, s, "c", "3") // 6
	ws := s.NewWatchStream()
	defer ws.Close()
	mustWatch(t, ws, "a", "d", 2, WatchOptions{})
	want := []string{"PUT a=0@2", "PUT b=1@3", "PUT a=2@4", "DEL b@5", "PUT c=3@6"}
	if got := events(t, ws, len(want)); !slices.Equal(got, want) {
		t.Fatalf("events %v, want %v", got, want)
	}
	put(t, s, "a", "4") // 7, live
	if got := events(t, ws, 1); !slices.Equal(got, []string{"PUT a=4@7"}) {
		t.Fatalf("live events %v", got)
	}
}

// Aborting a batch that wrote nothing keeps the earlier published batches;
// aborting one that wrote refuses further batches instead of silently
// dropping them (the server restarts and replays its log).
func TestDeferredAbort(t *testing.T) {
	s, _ := openDeferred(t, filepath.Join(t.TempDir(), "db"), 0)
	defer s.Close()
	put(t, s, "a", "1")
	b, err := s.Begin()
	if err != nil {
		t.Fatal(err)
	}
	b.Abort()
	if err := s.Flush(); err != nil {
		t.Fatalf("Flush after a clean abort: %v", err)
	}
	put(t, s, "a", "2")
	b, err = s.Begin()
	if err != nil {
		t.Fatal(err)
	}
	mustPut(t, b, "a", "3", 0)
	b.Abort()
	if got := rangeVal(t, s, "a"); got != "2" {
		t.Fatalf("read %q after abort, want the published 2", got)
	}
	if _, err := s.Begin(); err == nil {
		t.Fatal("Begin after aborting a dirty batch over deferred writes succeeded; want an error")
	}
}

// The flusher commits an open transaction once it is CommitInterval old,
// with no further batch; the batch itself returned without a commit.
func TestDeferredFlusherCommitsInBackground(t *testing.T) {
	var commits atomic.Int64
	s, err := Open(filepath.Join(t.TempDir(), "db"), Options{CommitInterval: 40 * time.Millisecond,
		OnCommit: func(time.Duration) { commits.Add(1) }})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	putApplied(t, s, "a", "1", 7)
	if n := commits.Load(); n != 0 {
		t.Fatalf("%d commits right after the batch, want 0", n)
	}
	deadline := time.Now().Add(5 * time.Second)
	for commits.Load() == 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if n := commits.Load(); n != 1 {
		t.Fatalf("%d commits within 5 s of an idle 40 ms batch, want 1", n)
	}
	sn, err := s.OpenSnapshot()
	if err != nil {
		t.Fatal(err)
	}
	defer sn.Close()
	if sn.Index != 7 || commits.Load() != 1 {
		t.Fatalf("file at index %d after %d commits; want 7 after 1 (nothing left to flush)", sn.Index, commits.Load())
	}
}
