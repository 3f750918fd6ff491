package mvcc

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
)

// write is one recorded write of a generated history.
type write struct {
	rev  int64
	key  string
	tomb bool
}

// genHistory writes n random puts and deletes over a few keys, one per
// revision (25 to a batch), and returns them in order.
func genHistory(t *testing.T, s *Store, seed uint64, n int) []write {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, 1))
	var out []write
	live := map[string]bool{}
	for len(out) < n {
		apply(t, s, func(b *Batch) {
			for i := 0; i < 25 && len(out) < n; i++ {
				k := fmt.Sprintf("k%02d", rng.IntN(25))
				if live[k] && rng.IntN(4) == 0 {
					r, err := b.DeleteRange(&pb.DeleteRangeRequest{Key: []byte(k)})
					if err != nil {
						t.Fatal(err)
					}
					out = append(out, write{r.Header.Revision, k, true})
					live[k] = false
					continue
				}
				r := mustPut(t, b, k, fmt.Sprint(len(out)), 0)
				out = append(out, write{r.Header.Revision, k, false})
				live[k] = true
			}
		})
	}
	return out
}

// wantAfterCompact is what the kv bucket must hold after a compaction at
// rev, computed from the history alone (etcd's rule): per key every write
// after rev, and the newest one at or below rev unless it is a deletion
// older than rev.
func wantAfterCompact(hist []write, rev int64) []int64 {
	newest := map[string]write{}
	var out []int64
	for _, w := range hist {
		if w.rev <= rev {
			newest[w.key] = w
		}
	}
	for _, w := range hist {
		switch {
		case w.rev > rev:
			out = append(out, w.rev)
		case newest[w.key] == w && !(w.tomb && w.rev < rev):
			out = append(out, w.rev)
		}
	}
	return out
}

// pausedCompactor makes the compactor of the store opened with its
// options stop after every step that did work until the test lets it go.
type pausedCompactor struct {
	steps  chan stepResult
	resume chan struct{}
	free   chan struct{} // closed: the compactor runs on unpaused
}

func newPausedCompactor() *pausedCompactor {
	return &pausedCompactor{steps: make(chan stepResult), resume: make(chan struct{}), free: make(chan struct{})}
}

func (p *pausedCompactor) release() { close(p.free) }

func (p *pausedCompactor) hook(r stepResult) {
	select {
	case p.steps <- r:
	case <-p.free:
		return
	case <-time.After(waitFor):
		return // the test is gone; do not hang the store's Close
	}
	select {
	case <-p.resume:
	case <-p.free:
	case <-time.After(waitFor):
	}
}

// openPaused opens a store in dir whose compactor pauses after each step
// of limit entries; deferred leaves commits to the (hourly) flusher.
func openPaused(t *testing.T, dir string, limit int, deferred bool) (*Store, *pausedCompactor) {
	t.Helper()
	pc := newPausedCompactor()
	opts := Options{CompactionBatchLimit: limit, afterCompactStep: pc.hook}
	if deferred {
		opts.CommitInterval = time.Hour
	}
	s, err := Open(filepath.Join(dir, "db"), opts)
	if err != nil {
		t.Fatal(err)
	}
	return s, pc
}

// next waits for the next step.
func (p *pausedCompactor) next(t *testing.T) stepResult {
	t.Helper()
	select {
	case r := <-p.steps:
		return r
	case <-time.After(waitFor):
		t.Fatal("no compaction step within", waitFor)
	}
	return stepResult{}
}

// rangeAll reads every key at rev.
func rangeAll(t *testing.T, s *Store, rev int64) string {
	t.Helper()
	r, err := s.Range(&pb.RangeRequest{Key: []byte{0}, RangeEnd: []byte{0}, Revision: rev})
	if err != nil {
		t.Fatalf("Range at %d: %v", rev, err)
	}
	return fmt.Sprint(r.Kvs)
}

// TestBackgroundCompaction compacts a long history in small steps and
// checks, while the deletions are under way: reads below the compacted
// revision fail, reads at and above it are what an uncompacted copy
// returns, HashKV already is its final value, watchers from a compacted
// revision get the compacted error, and puts commit between steps. When
// done the file holds exactly what etcd's compaction rule keeps.
func TestBackgroundCompaction(t *testing.T) {
	for _, deferred := range []bool{false, true} {
		t.Run(fmt.Sprint("deferred=", deferred), func(t *testing.T) {
			dir := t.TempDir()
			s, pc := openPaused(t, dir, 40, deferred)
			defer s.Close()
			ref := openTest(t) // the same history, never compacted
			hist := genHistory(t, s, 7, 1500)
			if h2 := genHistory(t, ref, 7, 1500); !slices.Equal(hist, h2) {
				t.Fatal("histories differ")
			}
			const at = 1200
			if err := compact(s, at); err != nil {
				t.Fatal(err)
			}
			cur, _ := s.Rev()
			ws := s.NewWatchStream()
			defer ws.Close()

			steps, puts := 0, 0
			for steps < 1000 {
				res := pc.next(t)
				steps++
				if res.finished {
					pc.release()
					break
				}
				// The compactor is paused between two steps: it has not
				// finished, yet everything clients see is final.
				if comp, fin := s.CompactionDone(); comp != at || fin >= at {
					t.Fatalf("step %d: CompactionDone = %d, %d; want %d and unfinished", steps, comp, fin, at)
				}
				if _, err := s.Range(&pb.RangeRequest{Key: []byte("k00"), Revision: at - 1}); !errors.Is(err, ErrCompacted) {
					t.Fatalf("step %d: read below the compaction = %v, want ErrCompacted", steps, err)
				}
				if steps == 1 || steps%7 == 0 {
					// The first step trims the index; the later ones delete
					// from the file: reads and HashKV never differ.
					for rev := int64(at); rev <= cur; rev += 37 {
						if got, want := rangeAll(t, s, rev), rangeAll(t, ref, rev); got != want {
							t.Fatalf("read at %d during compaction differs from the uncompacted store:\n got %s\nwant %s", rev, got, want)
						}
					}
					if h, _, comp, err := s.HashKV(cur); err != nil || h != mustHashAfter(t, hist, at, cur) || comp != at {
						t.Fatalf("HashKV during compaction = %08x, %d, %v", h, comp, err)
					}
				}
				if steps == 1 {
					id := mustWatch(t, ws, "k", "l", at-1, WatchOptions{})
					if r := recv(t, ws); r.WatchID != id || r.CompactRevision != at {
						t.Fatalf("watch from %d during compaction: %+v, want compact revision %d", at-1, r, at)
					}
				}
				// A put goes through while the compaction is unfinished.
				put(t, s, "between", fmt.Sprint(steps))
				put(t, ref, "between", fmt.Sprint(steps))
				puts++
				pc.resume <- struct{}{}
			}
			if want := at/40 - 1; steps < want {
				t.Fatalf("compaction took %d steps, want at least %d with a batch limit of 40", steps, want)
			}
			if puts != steps-1 {
				t.Fatalf("%d puts between %d steps", puts, steps)
			}
			if comp, fin := s.CompactionDone(); comp != at || fin != at {
				t.Fatalf("after the last step CompactionDone = %d, %d", comp, fin)
			}
			wantRevs := wantAfterCompact(hist, at)
			for i := range puts {
				wantRevs = append(wantRevs, cur+1+int64(i))
			}
			if got := storedRevs(t, s); !slices.Equal(got, wantRevs) {
				t.Fatalf("kv holds %d revisions, want %d:\n got %v\nwant %v", len(got), len(wantRevs), got, wantRevs)
			}
			if h, _, _, err := s.HashKV(cur); err != nil || h != mustHashAfter(t, hist, at, cur) {
				t.Fatalf("HashKV after compaction = %08x, %v", h, err)
			}
			id := mustWatch(t, ws, "k", "l", at, WatchOptions{})
			if r := recv(t, ws); r.WatchID != id || r.CompactRevision != 0 || len(r.Events) == 0 || r.Events[0].Kv.ModRevision < at {
				t.Fatalf("watch from the compacted revision: %+v", r)
			}
		})
	}
}

// mustHashAfter is the HashKV at rev of a store that holds hist compacted
// at comp: built from scratch with the same history and a compaction that
// is waited for.
func mustHashAfter(t *testing.T, hist []write, comp, rev int64) uint32 {
	t.Helper()
	s := openTest(t)
	genHistory(t, s, 7, len(hist))
	if err := compact(s, comp); err != nil {
		t.Fatal(err)
	}
	storedRevs(t, s) // waits
	h, _, _, err := s.HashKV(rev)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// TestCompactionResumesAfterCrash copies the file while a compaction is
// half done (what a crash leaves behind), opens the copy and checks that
// the compaction is finished there with the same result.
func TestCompactionResumesAfterCrash(t *testing.T) {
	for _, deferred := range []bool{false, true} {
		t.Run(fmt.Sprint("deferred=", deferred), func(t *testing.T) {
			dir := t.TempDir()
			s, pc := openPaused(t, dir, 50, deferred)
			defer s.Close()
			hist := genHistory(t, s, 11, 800)
			const at = 600
			if err := compact(s, at); err != nil {
				t.Fatal(err)
			}
			for range 3 {
				if res := pc.next(t); res.finished {
					t.Fatal("compaction finished in 3 steps; the test needs more")
				}
				pc.resume <- struct{}{}
			}
			pc.next(t) // paused after the 4th step: copy the file as it is
			crashed := filepath.Join(dir, "crashed.db")
			copyFile(t, filepath.Join(dir, "db"), crashed)
			pc.release()
			cur, _ := s.Rev()
			storedRevs(t, s)
			want, _, _, err := s.HashKV(cur)
			if err != nil {
				t.Fatal(err)
			}

			pc2 := newPausedCompactor()
			r, err := Open(crashed, Options{CompactionBatchLimit: 50, afterCompactStep: pc2.hook})
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			// Before the compactor's first step: the recovered store
			// already behaves as compacted.
			if comp, fin := r.CompactionDone(); comp != at || fin >= at {
				t.Fatalf("recovered CompactionDone = %d, %d; want %d and unfinished", comp, fin, at)
			}
			if rc, _ := r.Rev(); rc != cur {
				t.Fatalf("recovered revision %d, want %d", rc, cur)
			}
			if _, err := r.Range(&pb.RangeRequest{Key: []byte("k01"), Revision: at - 1}); !errors.Is(err, ErrCompacted) {
				t.Fatalf("recovered read below the compaction = %v", err)
			}
			if h, _, _, err := r.HashKV(cur); err != nil || h != want {
				t.Fatalf("recovered HashKV before finishing = %08x, %v; want %08x", h, err, want)
			}
			pc2.release()
			if got, wantRevs := storedRevs(t, r), wantAfterCompact(hist, at); !slices.Equal(got, wantRevs) {
				t.Fatalf("recovered kv holds %v\nwant %v", got, wantRevs)
			}
			for rev := int64(at); rev <= cur; rev += 23 {
				if got, want := rangeAll(t, r, rev), rangeAll(t, s, rev); got != want {
					t.Fatalf("recovered read at %d differs:\n got %s\nwant %s", rev, got, want)
				}
			}
			if h, _, _, err := r.HashKV(cur); err != nil || h != want {
				t.Fatalf("recovered HashKV = %08x, %v; want %08x", h, err, want)
			}
		})
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	src, err := os.Open(from)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	dst, err := os.Create(to)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(dst, src); err != nil {
		t.Fatal(err)
	}
	if err := dst.Close(); err != nil {
		t.Fatal(err)
	}
}

// A second compaction published while the first is still being deleted
// takes over: both end up done, and the file is what the second keeps.
func TestCompactionOverlapping(t *testing.T) {
	pc := newPausedCompactor()
	s, err := Open(filepath.Join(t.TempDir(), "db"), Options{CompactionBatchLimit: 30, afterCompactStep: pc.hook})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	hist := genHistory(t, s, 3, 600)
	if err := compact(s, 200); err != nil {
		t.Fatal(err)
	}
	pc.next(t)
	if err := compact(s, 500); err != nil {
		t.Fatal(err)
	}
	pc.release()
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	if err := s.WaitCompaction(ctx); err != nil {
		t.Fatal(err)
	}
	if comp, fin := s.CompactionDone(); comp != 500 || fin != 500 {
		t.Fatalf("CompactionDone = %d, %d; want 500, 500", comp, fin)
	}
	if got, want := storedRevs(t, s), wantAfterCompact(hist, 500); !slices.Equal(got, want) {
		t.Fatalf("kv holds %v\nwant %v", got, want)
	}
}

// Close while the compactor is paused mid-way, and while a batch is left
// open, returns; the reopened file finishes the compaction.
func TestCloseDuringCompaction(t *testing.T) {
	path := filepath.Join(t.TempDir(), "db")
	pc := newPausedCompactor()
	s, err := Open(path, Options{CompactionBatchLimit: 20, afterCompactStep: pc.hook})
	if err != nil {
		t.Fatal(err)
	}
	hist := genHistory(t, s, 5, 300)
	if err := compact(s, 250); err != nil {
		t.Fatal(err)
	}
	pc.next(t)
	if _, err := s.Begin(); err != nil { // abandoned: Close must still return
		t.Fatal(err)
	}
	closed := make(chan error, 1)
	go func() { closed <- s.Close() }()
	pc.release()
	select {
	case err := <-closed:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(waitFor):
		t.Fatal("Close did not return")
	}
	s, err = Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if got, want := storedRevs(t, s), wantAfterCompact(hist, 250); !slices.Equal(got, want) {
		t.Fatalf("kv holds %v\nwant %v", got, want)
	}
}

// TestIndexTrimmedInSteps: the apply batch of a compaction leaves the index
// alone; the compactor trims it in steps of CompactionBatchLimit keys
// before it deletes from the file. Between any two steps, reads at every
// revision from the compacted one on, and HashKV, equal those of a store
// that never compacted (reads) or finished compacting (hash).
func TestIndexTrimmedInSteps(t *testing.T) {
	s, pc := openPaused(t, t.TempDir(), 5, false)
	defer s.Close()
	ref := openTest(t)
	hist := genHistory(t, s, 7, 2000) // seed 7: mustHashAfter rebuilds it
	genHistory(t, ref, 7, 2000)
	const at = 1500
	if err := compact(s, at); err != nil {
		t.Fatal(err)
	}
	cur, _ := s.Rev()
	wantHash := mustHashAfter(t, hist, at, cur)
	trimSteps := 0
	for steps := 1; steps < 5000; steps++ {
		res := pc.next(t)
		s.mu.RLock()
		trimming := s.trimmed < at
		s.mu.RUnlock()
		if trimming {
			trimSteps++
		}
		if res.finished {
			pc.release()
			break
		}
		if !trimming && steps%10 != 0 {
			pc.resume <- struct{}{} // deleting from the file: looked at every tenth step
			continue
		}
		for rev := int64(at); rev <= cur; rev += 53 {
			if got, want := rangeAll(t, s, rev), rangeAll(t, ref, rev); got != want {
				t.Fatalf("step %d (trimming %v): read at %d differs from the uncompacted store:\n got %s\nwant %s", steps, trimming, rev, got, want)
			}
		}
		if h, _, _, err := s.HashKV(cur); err != nil || h != wantHash {
			t.Fatalf("step %d (trimming %v): HashKV = %08x, %v", steps, trimming, h, err)
		}
		pc.resume <- struct{}{}
	}
	// 25 keys, 5 per step: the trim took several steps, not the batch.
	if trimSteps < 4 {
		t.Fatalf("the index was trimmed in %d background steps; want at least 4 (25 keys, 5 per step)", trimSteps)
	}
}
