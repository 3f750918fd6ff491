package mvcc

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"testing"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
)

const waitFor = 5 * time.Second

// evString renders an event as "PUT a=v@3" or "DEL a@4", with " prev=x"
// when it carries a previous value.
func evString(ev *mvccpb.Event) string {
	s := fmt.Sprintf("DEL %s@%d", ev.Kv.Key, ev.Kv.ModRevision)
	if ev.Type == mvccpb.PUT {
		s = fmt.Sprintf("PUT %s=%s@%d", ev.Kv.Key, ev.Kv.Value, ev.Kv.ModRevision)
	}
	if ev.PrevKv != nil {
		s += " prev=" + string(ev.PrevKv.Value)
	}
	return s
}

func recv(t *testing.T, ws *WatchStream) WatchResponse {
	t.Helper()
	select {
	case r, ok := <-ws.Chan():
		if !ok {
			t.Fatal("watch stream closed")
		}
		return r
	case <-time.After(waitFor):
		t.Fatal("no watch response within", waitFor)
	}
	return WatchResponse{}
}

// events receives until n events arrived, checking that a response never
// splits a revision and that revisions only grow.
func events(t *testing.T, ws *WatchStream, n int) []string {
	t.Helper()
	var out []string
	last := int64(0)
	for len(out) < n {
		r := recv(t, ws)
		if len(r.Events) == 0 {
			continue // progress
		}
		for _, ev := range r.Events {
			if ev.Kv.ModRevision < last {
				t.Fatalf("revision went back from %d to %d", last, ev.Kv.ModRevision)
			}
			last = ev.Kv.ModRevision
			out = append(out, evString(ev))
		}
	}
	if len(out) != n {
		t.Fatalf("got %d events, want %d: %v", len(out), n, out)
	}
	return out
}

func noResponse(t *testing.T, ws *WatchStream, d time.Duration) {
	t.Helper()
	select {
	case r := <-ws.Chan():
		t.Fatalf("unexpected response %+v", r)
	case <-time.After(d):
	}
}

func mustWatch(t *testing.T, ws *WatchStream, key, end string, rev int64, o WatchOptions) int64 {
	t.Helper()
	id, err := ws.Watch(0, []byte(key), bytesOrNil(end), rev, o)
	if err != nil {
		t.Fatalf("Watch(%q, %q, %d): %v", key, end, rev, err)
	}
	return id
}

func TestWatchRanges(t *testing.T) {
	tests := []struct {
		name, key, end string
		want           []string
	}{
		{"single key", "b", "", []string{"PUT b=1@3", "DEL b@6"}},
		{"range", "b", "c", []string{"PUT b=1@3", "PUT bb=2@4", "DEL b@6"}},
		{"prefix", "b", "c", []string{"PUT b=1@3", "PUT bb=2@4", "DEL b@6"}},
		{"from key", "bb", "\x00", []string{"PUT bb=2@4", "PUT c=3@5"}},
	}
	for _, live := range []bool{true, false} {
		for _, tt := range tests {
			t.Run(fmt.Sprintf("%s/live=%v", tt.name, live), func(t *testing.T) {
				s := openTest(t)
				ws := s.NewWatchStream()
				defer ws.Close()
				start := int64(2)
				if live {
					mustWatch(t, ws, tt.key, tt.end, 0, WatchOptions{})
				}
				put(t, s, "a", "0")  // 2
				put(t, s, "b", "1")  // 3
				put(t, s, "bb", "2") // 4
				put(t, s, "c", "3")  // 5
				del(t, s, "b", "")   // 6
				if !live {
					mustWatch(t, ws, tt.key, tt.end, start, WatchOptions{})
				}
				if got := events(t, ws, len(tt.want)); !slices.Equal(got, tt.want) {
					t.Fatalf("events %v, want %v", got, tt.want)
				}
				noResponse(t, ws, 20*time.Millisecond)
			})
		}
	}
}

// TestWatchOneRevisionOneResponse: a txn's writes (one revision) arrive in
// one response, for a live and a history watcher.
func TestWatchOneRevisionOneResponse(t *testing.T) {
	s := openTest(t)
	live := s.NewWatchStream()
	defer live.Close()
	mustWatch(t, live, "k", "l", 0, WatchOptions{})
	runTxn(t, s, &pb.TxnRequest{Success: []*pb.RequestOp{opPut("k1", "a"), opPut("k2", "b"), opPut("k3", "c")}})
	hist := s.NewWatchStream()
	defer hist.Close()
	mustWatch(t, hist, "k", "l", 1, WatchOptions{})
	for _, ws := range []*WatchStream{live, hist} {
		r := recv(t, ws)
		if len(r.Events) != 3 || r.Revision != 2 {
			t.Fatalf("response %+v, want 3 events at revision 2", r)
		}
	}
}

func TestWatchOptions(t *testing.T) {
	tests := []struct {
		name string
		o    WatchOptions
		want []string
	}{
		{"plain", WatchOptions{}, []string{"PUT k=1@2", "PUT k=2@3", "DEL k@4", "PUT k=3@5"}},
		{"prev kv", WatchOptions{PrevKV: true}, []string{"PUT k=1@2", "PUT k=2@3 prev=1", "DEL k@4 prev=2", "PUT k=3@5"}},
		{"no put", WatchOptions{FilterPut: true}, []string{"DEL k@4"}},
		{"no delete", WatchOptions{FilterDelete: true}, []string{"PUT k=1@2", "PUT k=2@3", "PUT k=3@5"}},
	}
	for _, live := range []bool{true, false} {
		for _, tt := range tests {
			t.Run(fmt.Sprintf("%s/live=%v", tt.name, live), func(t *testing.T) {
				s := openTest(t)
				ws := s.NewWatchStream()
				defer ws.Close()
				if live {
					mustWatch(t, ws, "k", "", 0, tt.o)
				}
				put(t, s, "k", "1")
				put(t, s, "k", "2")
				del(t, s, "k", "")
				put(t, s, "k", "3")
				if !live {
					mustWatch(t, ws, "k", "", 1, tt.o)
				}
				if got := events(t, ws, len(tt.want)); !slices.Equal(got, tt.want) {
					t.Fatalf("events %v, want %v", got, tt.want)
				}
				noResponse(t, ws, 20*time.Millisecond)
			})
		}
	}
}

// TestWatchPrevKVAddedMidBatch: a prev-kv watcher created while a batch is
// open (the batch did not read previous values) still gets them.
func TestWatchPrevKVAddedMidBatch(t *testing.T) {
	for _, otherWatcher := range []bool{false, true} {
		t.Run(fmt.Sprint("other-watcher=", otherWatcher), func(t *testing.T) {
			testWatchPrevKVAddedMidBatch(t, otherWatcher)
		})
	}
}

// otherWatcher: a plain watcher exists at Begin, so the batch records
// events but reads no previous values.
func testWatchPrevKVAddedMidBatch(t *testing.T, otherWatcher bool) {
	s := openTest(t)
	put(t, s, "k", "1")
	if otherWatcher {
		o := s.NewWatchStream()
		defer o.Close()
		mustWatch(t, o, "k", "", 0, WatchOptions{})
	}
	b, err := s.Begin()
	if err != nil {
		t.Fatal(err)
	}
	mustPut(t, b, "k", "2", 0)
	ws := s.NewWatchStream()
	defer ws.Close()
	mustWatch(t, ws, "k", "", 0, WatchOptions{PrevKV: true})
	mustPut(t, b, "k", "3", 0)
	if err := b.Commit(); err != nil {
		t.Fatal(err)
	}
	if got, want := events(t, ws, 2), []string{"PUT k=2@3 prev=1", "PUT k=3@4 prev=2"}; !slices.Equal(got, want) {
		t.Fatalf("events %v, want %v", got, want)
	}
}

// TestWatchHistoryToLive writes while a watcher replays history: it must
// see every revision exactly once, in order, across the switch to live.
func TestWatchHistoryToLive(t *testing.T) {
	s := openTest(t)
	for i := range 2500 { // more than one catch-up window
		put(t, s, "k", fmt.Sprint(i))
	}
	ws := s.NewWatchStream()
	defer ws.Close()
	mustWatch(t, ws, "k", "", 100, WatchOptions{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range 300 {
			b, err := s.Begin()
			if err != nil {
				return
			}
			b.Put(&pb.PutRequest{Key: []byte("k"), Value: []byte(fmt.Sprint("live", i))})
			b.Commit()
		}
	}()
	const total = 2500 + 300 - 98 // revisions 100 .. 2801
	var revs []int64
	for len(revs) < total {
		for _, ev := range recv(t, ws).Events {
			revs = append(revs, ev.Kv.ModRevision)
		}
	}
	<-done
	for i, r := range revs {
		if r != int64(100+i) {
			t.Fatalf("event %d has revision %d, want %d (gap or duplicate)", i, r, 100+i)
		}
	}
	noResponse(t, ws, 20*time.Millisecond)
}

func TestWatchCompacted(t *testing.T) {
	s := openTest(t)
	for i := range 6 {
		put(t, s, "k", fmt.Sprint(i)) // 2..7
	}
	if err := compact(s, 5); err != nil {
		t.Fatal(err)
	}
	ws := s.NewWatchStream()
	defer ws.Close()
	id, err := ws.Watch(5, []byte("k"), nil, 3, WatchOptions{})
	if err != nil {
		t.Fatal(err)
	}
	r := recv(t, ws)
	if r.WatchID != id || r.CompactRevision != 5 || len(r.Events) != 0 {
		t.Fatalf("got %+v, want compact revision 5 for watch %d", r, id)
	}
	put(t, s, "k", "x")
	noResponse(t, ws, 30*time.Millisecond) // the compacted watcher is dead
	if _, err := ws.Watch(id, []byte("k"), nil, 0, WatchOptions{}); !errors.Is(err, ErrWatcherIDInUse) {
		t.Fatalf("reusing a compacted watcher's ID before cancel: %v", err)
	}
	if err := ws.Cancel(id); err != nil {
		t.Fatalf("Cancel compacted watcher: %v", err)
	}
	// The compacted revision itself is still watchable.
	mustWatch(t, ws, "k", "", 5, WatchOptions{})
	if got, want := events(t, ws, 4), []string{"PUT k=3@5", "PUT k=4@6", "PUT k=5@7", "PUT k=x@8"}; !slices.Equal(got, want) {
		t.Fatalf("events %v, want %v", got, want)
	}
}

func TestWatchStreamAPI(t *testing.T) {
	s := openTest(t)
	ws := s.NewWatchStream()
	if id := mustWatch(t, ws, "a", "", 0, WatchOptions{}); id != 0 {
		t.Fatalf("first auto ID %d, want 0 (etcd)", id)
	}
	if id, err := ws.Watch(1, []byte("a"), nil, 0, WatchOptions{}); err != nil || id != 1 {
		t.Fatalf("chosen ID: %d, %v", id, err)
	}
	if id := mustWatch(t, ws, "a", "", 0, WatchOptions{}); id != 2 {
		t.Fatalf("auto ID skips taken IDs: got %d, want 2", id)
	}
	if _, err := ws.Watch(2, []byte("a"), nil, 0, WatchOptions{}); !errors.Is(err, ErrWatcherIDInUse) {
		t.Fatalf("duplicate ID: %v", err)
	}
	if _, err := ws.Watch(0, []byte("b"), []byte("a"), 0, WatchOptions{}); !errors.Is(err, ErrEmptyWatcherRange) {
		t.Fatalf("empty range: %v", err)
	}
	if err := ws.Cancel(1); err != nil {
		t.Fatal(err)
	}
	if err := ws.Cancel(1); !errors.Is(err, ErrWatcherNotExist) {
		t.Fatalf("second cancel: %v", err)
	}
	put(t, s, "a", "1")
	got := map[int64]bool{}
	for range 2 {
		got[recv(t, ws).WatchID] = true
	}
	if !got[0] || !got[2] || got[1] {
		t.Fatalf("responses for watch IDs %v, want 0 and 2", got)
	}
	ws.Close()
	if _, ok := <-ws.Chan(); ok {
		t.Fatal("Chan not closed by Close")
	}
	if _, err := ws.Watch(0, []byte("a"), nil, 0, WatchOptions{}); !errors.Is(err, ErrClosed) {
		t.Fatalf("Watch on closed stream: %v", err)
	}
	if n := s.hub.watchers.Load(); n != 0 {
		t.Fatalf("%d watchers still registered after Close", n)
	}
}

// TestWatchSlowWatcher: a stream nobody reads must neither block Commit nor
// other streams, buffers at most chanBufLen responses, and gets every event
// in order once it reads again.
func TestWatchSlowWatcher(t *testing.T) {
	s := openTest(t)
	slow, fast := s.NewWatchStream(), s.NewWatchStream()
	defer slow.Close()
	defer fast.Close()
	mustWatch(t, slow, "k", "", 0, WatchOptions{PrevKV: true})
	mustWatch(t, fast, "k", "", 0, WatchOptions{})
	const n = 4 * chanBufLen
	var worst time.Duration
	for i := range n {
		start := time.Now()
		put(t, s, "k", fmt.Sprint(i))
		worst = max(worst, time.Since(start))
		if got := events(t, fast, 1)[0]; got != fmt.Sprintf("PUT k=%d@%d", i, i+2) {
			t.Fatalf("fast watcher got %s at write %d", got, i)
		}
		if l := len(slow.Chan()); l > chanBufLen {
			t.Fatalf("slow stream buffers %d responses, bound is %d", l, chanBufLen)
		}
	}
	if worst > 2*time.Second {
		t.Fatalf("a commit took %v with a stalled watcher", worst)
	}
	s.hub.mu.Lock()
	unsynced := len(s.hub.unsynced)
	s.hub.mu.Unlock()
	if unsynced != 1 {
		t.Fatalf("%d unsynced watchers, want the stalled one", unsynced)
	}
	got := events(t, slow, n)
	for i, e := range got {
		want := fmt.Sprintf("PUT k=%d@%d", i, i+2)
		if i > 0 {
			want += fmt.Sprintf(" prev=%d", i-1)
		}
		if e != want {
			t.Fatalf("slow watcher event %d = %s, want %s", i, e, want)
		}
	}
	put(t, s, "k", "after")
	if got := events(t, slow, 1)[0]; got != fmt.Sprintf("PUT k=after@%d prev=%d", n+2, n-1) {
		t.Fatalf("after catching up: %s", got)
	}
}

func TestWatchProgress(t *testing.T) {
	s, err := Open(t.TempDir()+"/db", Options{ProgressInterval: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	put(t, s, "x", "1") // 2
	ws := s.NewWatchStream()
	defer ws.Close()
	id := mustWatch(t, ws, "k", "", 0, WatchOptions{ProgressNotify: true})
	r := recv(t, ws)
	if r.WatchID != id || len(r.Events) != 0 || r.Revision != 2 {
		t.Fatalf("progress notify %+v, want empty response at revision 2", r)
	}
	other := s.NewWatchStream()
	defer other.Close()
	mustWatch(t, other, "k", "", 0, WatchOptions{})
	mustWatch(t, other, "x", "", 1, WatchOptions{}) // replays then syncs
	put(t, s, "x", "2")                             // 3
	other.RequestProgress()
	var progress []WatchResponse
	for len(progress) == 0 {
		if r := recv(t, other); len(r.Events) == 0 {
			progress = append(progress, r)
		}
	}
	if p := progress[0]; p.WatchID != ProgressWatchID || p.Revision != 3 {
		t.Fatalf("requested progress %+v, want watch ID -1 at revision 3", p)
	}
	noResponse(t, other, 50*time.Millisecond) // no periodic progress without ProgressNotify
}

// TestWatchReplaceWith installs a newer snapshot under live watchers: they
// get the events the snapshot added, or a compaction error if the snapshot
// no longer holds them.
func TestWatchReplaceWith(t *testing.T) {
	for _, compacted := range []bool{false, true} {
		t.Run(fmt.Sprint("compacted=", compacted), func(t *testing.T) {
			dir := t.TempDir()
			s := openTest(t)
			put(t, s, "k", "1") // 2
			ws := s.NewWatchStream()
			defer ws.Close()
			id := mustWatch(t, ws, "k", "", 0, WatchOptions{})

			// The "leader": a copy of s that moves ahead.
			snap := dir + "/leader.db"
			if err := writeFile(s, snap); err != nil {
				t.Fatal(err)
			}
			leader, err := Open(snap, Options{})
			if err != nil {
				t.Fatal(err)
			}
			put(t, leader, "k", "2") // 3
			put(t, leader, "j", "x") // 4
			put(t, leader, "k", "3") // 5
			if compacted {
				if err := compact(leader, 4); err != nil {
					t.Fatal(err)
				}
			}
			if err := leader.Close(); err != nil {
				t.Fatal(err)
			}
			if err := s.ReplaceWith(snap); err != nil {
				t.Fatal(err)
			}
			if compacted {
				if r := recv(t, ws); r.WatchID != id || r.CompactRevision != 4 {
					t.Fatalf("got %+v, want compact revision 4", r)
				}
				return
			}
			if got, want := events(t, ws, 2), []string{"PUT k=2@3", "PUT k=3@5"}; !slices.Equal(got, want) {
				t.Fatalf("events %v, want %v", got, want)
			}
			put(t, s, "k", "4")
			if got := events(t, ws, 1)[0]; got != "PUT k=4@6" {
				t.Fatalf("live after snapshot: %s", got)
			}
		})
	}
}

func TestStoreCloseClosesStreams(t *testing.T) {
	s, err := Open(t.TempDir()+"/db", Options{})
	if err != nil {
		t.Fatal(err)
	}
	ws := s.NewWatchStream()
	mustWatch(t, ws, "k", "", 0, WatchOptions{})
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case _, ok := <-ws.Chan():
		if ok {
			t.Fatal("unexpected response")
		}
	case <-time.After(waitFor):
		t.Fatal("stream not closed with the store")
	}
	ws.Close() // still safe
}

func TestLeaseHelpers(t *testing.T) {
	s := openTest(t)
	apply(t, s, func(b *Batch) {
		mustPut(t, b, "a", "1", 7)
		mustPut(t, b, "b", "1", 7)
		mustPut(t, b, "c", "1", 0)
		mustPut(t, b, "d", "1", 9)
		if kv, err := b.Get([]byte("d")); err != nil || kv == nil || kv.Lease != 9 {
			t.Fatalf("Batch.Get(d) = %v, %v", kv, err)
		}
		if kv, err := b.Get([]byte("zz")); err != nil || kv != nil {
			t.Fatalf("Batch.Get(missing) = %v, %v", kv, err)
		}
		b.SetMeta("lease/7", []byte("x"))
		b.SetMeta("lease/9", []byte("y"))
		b.SetMeta("other", []byte("z"))
	})
	del(t, s, "d", "")
	got, err := s.KeysWithLease()
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || len(got[7]) != 2 || string(got[7][0]) != "a" || string(got[7][1]) != "b" {
		t.Fatalf("KeysWithLease = %v", got)
	}
	m, err := s.MetaWithPrefix("lease/")
	if err != nil {
		t.Fatal(err)
	}
	if len(m) != 2 || string(m["lease/7"]) != "x" || string(m["lease/9"]) != "y" {
		t.Fatalf("MetaWithPrefix = %q", m)
	}
}

// writeFile writes a snapshot of s to path.
func writeFile(s *Store, path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := s.WriteSnapshot(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
