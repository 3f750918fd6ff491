package e2e

// Helpers shared by the watch, lease and concurrency tests (issue 4). Names
// start with "wl" so they cannot collide with helpers of other files.

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// wlNeedWatch is the first Watch call of a test: it opens a watch and waits
// for the server to confirm it. codes.Unimplemented (Cadre before its Watch
// service exists) skips the test; any other failure fails it.
func wlNeedWatch(t *testing.T, cli *clientv3.Client) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for resp := range cli.Watch(ctx, "wl-preflight", clientv3.WithCreatedNotify()) {
		if err := resp.Err(); err != nil {
			if linUnimplemented(err) {
				t.Skipf("Watch not implemented yet: %v", err)
			}
			t.Fatalf("preflight watch: %v", err)
		}
		if resp.Created {
			return
		}
	}
	t.Fatalf("preflight watch: channel closed without a created response (ctx %v)", ctx.Err())
}

// wlNeedLease is the first Lease call of a test: grant and revoke one
// lease. codes.Unimplemented on the grant skips the test; any other failure
// (the revoke included) fails it.
func wlNeedLease(t *testing.T, cli *clientv3.Client) {
	t.Helper()
	g, err := cli.Grant(ctxFor(t, opTimeout), 60)
	if err != nil {
		if linUnimplemented(err) {
			t.Skipf("Lease not implemented yet: %v", err)
		}
		t.Fatalf("preflight lease grant: %v", err)
	}
	if _, err := cli.Revoke(ctxFor(t, opTimeout), g.ID); err != nil {
		t.Fatalf("preflight lease revoke %x: %v", g.ID, err)
	}
}

// wlWatcher reads one logical watch into a log of events. resume moves it
// to another client from the last revision + 1, which is how a client
// survives the loss of the member serving it.
type wlWatcher struct {
	t    *testing.T
	name string
	key  string
	opts []clientv3.OpOption

	mu       sync.Mutex
	events   []*clientv3.Event
	respOf   []int   // response number of each event (atomicity check)
	progress []int64 // header revisions of progress notifications
	resps    int
	err      error // error that closed the channel, if any
	closed   bool

	cancel context.CancelFunc
	done   chan struct{}
}

// wlWatch starts a watch and waits until the server has created it, so
// writes made after it returns are seen.
func wlWatch(t *testing.T, name string, cli *clientv3.Client, key string, opts ...clientv3.OpOption) *wlWatcher {
	t.Helper()
	w := &wlWatcher{t: t, name: name, key: key, opts: opts}
	w.start(cli, opts)
	t.Cleanup(w.stop)
	return w
}

func (w *wlWatcher) start(cli *clientv3.Client, opts []clientv3.OpOption) {
	w.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	wch := cli.Watch(ctx, w.key, append(append([]clientv3.OpOption(nil), opts...), clientv3.WithCreatedNotify())...)
	created := make(chan error, 1)
	done := make(chan struct{})
	w.mu.Lock()
	w.cancel, w.done, w.closed, w.err = cancel, done, false, nil
	w.mu.Unlock()
	go func() {
		defer close(done)
		first := true
		for resp := range wch {
			if first && resp.Created {
				first = false
				created <- resp.Err()
				continue
			}
			w.record(resp)
		}
		w.mu.Lock()
		w.closed = true
		w.mu.Unlock()
		if first {
			created <- fmt.Errorf("channel closed before the created response")
		}
	}()
	select {
	case err := <-created:
		if err != nil {
			cancel()
			w.t.Fatalf("watch %s: creating: %v", w.name, err)
		}
	case <-time.After(10 * time.Second):
		cancel()
		w.t.Fatalf("watch %s: not created within 10s", w.name)
	}
}

func (w *wlWatcher) record(resp clientv3.WatchResponse) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.resps++
	if err := resp.Err(); err != nil {
		w.err = err
	}
	if resp.IsProgressNotify() {
		w.progress = append(w.progress, resp.Header.Revision)
	}
	for _, ev := range resp.Events {
		w.events = append(w.events, ev)
		w.respOf = append(w.respOf, w.resps)
	}
}

// stop cancels the watch and waits (bounded) for its reader to end.
func (w *wlWatcher) stop() {
	w.mu.Lock()
	cancel, done := w.cancel, w.done
	w.mu.Unlock()
	cancel()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		w.t.Errorf("watch %s: channel not closed within 10s of cancelling its context", w.name)
	}
}

// resume stops the watch and continues it on cli from the last received
// revision + 1 (or the original start when nothing was received).
func (w *wlWatcher) resume(cli *clientv3.Client) {
	w.t.Helper()
	w.stop()
	opts := w.opts
	if last := w.lastRev(); last > 0 {
		opts = append(append([]clientv3.OpOption(nil), w.opts...), clientv3.WithRev(last+1))
	}
	w.t.Logf("watch %s: resuming after revision %d", w.name, w.lastRev())
	w.start(cli, opts)
}

func (w *wlWatcher) lastRev() int64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.events) == 0 {
		return 0
	}
	return w.events[len(w.events)-1].Kv.ModRevision
}

// snapshot returns copies of what was received so far.
func (w *wlWatcher) snapshot() (events []*clientv3.Event, respOf []int, progress []int64, closed bool, err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]*clientv3.Event(nil), w.events...), append([]int(nil), w.respOf...),
		append([]int64(nil), w.progress...), w.closed, w.err
}

// waitFor waits until cond holds on the events received, at most d.
func (w *wlWatcher) waitFor(what string, d time.Duration, cond func(evs []*clientv3.Event) bool) []*clientv3.Event {
	w.t.Helper()
	deadline := time.Now().Add(d)
	for {
		evs, _, _, closed, err := w.snapshot()
		if cond(evs) {
			return evs
		}
		if closed || time.Now().After(deadline) {
			w.t.Fatalf("watch %s: %s: not reached within %v (closed %v, err %v, %d events, last revision %d)",
				w.name, what, d, closed, err, len(evs), w.lastRev())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitRev waits until an event of revision >= rev has arrived.
func (w *wlWatcher) waitRev(rev int64, d time.Duration) []*clientv3.Event {
	w.t.Helper()
	return w.waitFor(fmt.Sprintf("an event at revision %d", rev), d, func(evs []*clientv3.Event) bool {
		return len(evs) > 0 && evs[len(evs)-1].Kv.ModRevision >= rev
	})
}

// waitN waits until at least n events have arrived.
func (w *wlWatcher) waitN(n int, d time.Duration) []*clientv3.Event {
	w.t.Helper()
	return w.waitFor(fmt.Sprintf("%d events", n), d, func(evs []*clientv3.Event) bool { return len(evs) >= n })
}

// wlCheckAtomic fails the test unless revisions never go back, every
// revision's events arrived in one response, and no (revision, key) pair
// repeats: etcd's Ordered, Atomic and Unique watch guarantees.
func wlCheckAtomic(t *testing.T, name string, evs []*clientv3.Event, respOf []int) {
	t.Helper()
	seen := map[string]bool{}
	for i, ev := range evs {
		id := fmt.Sprintf("%d/%s", ev.Kv.ModRevision, ev.Kv.Key)
		if seen[id] {
			t.Fatalf("watch %s: duplicate event %s %s at revision %d", name, ev.Type, ev.Kv.Key, ev.Kv.ModRevision)
		}
		seen[id] = true
		if i == 0 {
			continue
		}
		prev := evs[i-1].Kv.ModRevision
		switch {
		case ev.Kv.ModRevision < prev:
			t.Fatalf("watch %s: event %d at revision %d after revision %d", name, i, ev.Kv.ModRevision, prev)
		case ev.Kv.ModRevision == prev && respOf[i] != respOf[i-1]:
			t.Fatalf("watch %s: events of revision %d split over responses %d and %d", name, prev, respOf[i-1], respOf[i])
		}
	}
}

// wlEv is the expected shape of an event.
type wlEv struct {
	typ     mvccpb.Event_EventType
	key     string
	value   string
	rev     int64 // mod revision
	create  int64 // create revision (puts only)
	version int64 // puts only
	prev    string
	hasPrev bool
}

func (e wlEv) String() string {
	return fmt.Sprintf("%s %s=%q rev %d create %d version %d prev(%v %q)", e.typ, e.key, e.value, e.rev, e.create, e.version, e.hasPrev, e.prev)
}

func wlFromEvent(ev *clientv3.Event) wlEv {
	got := wlEv{typ: ev.Type, key: string(ev.Kv.Key), value: string(ev.Kv.Value), rev: ev.Kv.ModRevision}
	if ev.Type == clientv3.EventTypePut {
		got.create, got.version = ev.Kv.CreateRevision, ev.Kv.Version
	}
	if ev.PrevKv != nil {
		got.hasPrev, got.prev = true, string(ev.PrevKv.Value)
	}
	return got
}

// wlCompare fails the test unless evs are exactly want, in order.
func wlCompare(t *testing.T, name string, evs []*clientv3.Event, want []wlEv) {
	t.Helper()
	got := make([]wlEv, len(evs))
	for i, ev := range evs {
		got[i] = wlFromEvent(ev)
	}
	ok := len(got) == len(want)
	for i := 0; ok && i < len(got); i++ {
		ok = got[i] == want[i]
	}
	if !ok {
		t.Fatalf("watch %s: events\n got  %v\n want %v", name, got, want)
	}
}
