package e2e

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/cadrekv/cadre/tests/framework"
)

// wlSeqWriter puts n distinct keys, one at a time, each written at most
// once (a failed put is not retried: it may or may not be applied).
type wlSeqWriter struct {
	mu        sync.Mutex
	acked     map[string]int64 // key -> revision of its acknowledged put
	attempted map[string]bool
	lastAcked int64
	done      chan struct{}
}

func wlStartSeqWriter(cli *clientv3.Client, prefix string, n int, budget time.Duration) *wlSeqWriter {
	w := &wlSeqWriter{acked: map[string]int64{}, attempted: map[string]bool{}, done: make(chan struct{})}
	go func() {
		defer close(w.done)
		deadline := time.Now().Add(budget)
		for i := 0; w.ackedN() < n && time.Now().Before(deadline); i++ {
			// Paced, so that a fault injected at n/2 lands mid-run.
			time.Sleep(5 * time.Millisecond)
			key := writerKey(prefix, i)
			w.mu.Lock()
			w.attempted[key] = true
			w.mu.Unlock()
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			resp, err := cli.Put(ctx, key, writerValue(key))
			cancel()
			if err != nil {
				time.Sleep(50 * time.Millisecond) // no spinning on a leaderless cluster
				continue
			}
			w.mu.Lock()
			w.acked[key] = resp.Header.Revision
			w.lastAcked = max(w.lastAcked, resp.Header.Revision)
			w.mu.Unlock()
		}
	}()
	return w
}

func (w *wlSeqWriter) ackedN() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.acked)
}

// wait waits for the writer to finish and fails unless it acked n writes.
func (w *wlSeqWriter) wait(t *testing.T, n int, d time.Duration) {
	t.Helper()
	select {
	case <-w.done:
	case <-time.After(d):
		t.Fatalf("writer not done within %v (%d acknowledged)", d, w.ackedN())
	}
	if got := w.ackedN(); got < n {
		t.Fatalf("writer acknowledged %d of %d writes", got, n)
	}
	t.Logf("writer: %d attempted, %d acknowledged, last revision %d", len(w.attempted), len(w.acked), w.lastAcked)
}

// requireMidRun fails the test if the writer is already near its end, so
// a fault injected now would not be in the middle of the writes.
func (w *wlSeqWriter) requireMidRun(t *testing.T, n int) {
	t.Helper()
	if got := w.ackedN(); got > n*3/4 {
		t.Fatalf("writer had acknowledged %d of %d writes at the fault; it should be mid-run", got, n)
	}
}

// check fails the test unless evs hold one put per revision from first to
// at least the last acknowledged revision with no gap and no duplicate,
// each for a key the writer tried, with its value, and every acknowledged
// put at its revision. The writer's cluster has no other traffic, so every
// revision from first on is one of its puts.
func (w *wlSeqWriter) check(t *testing.T, name string, evs []*clientv3.Event, respOf []int, first int64) {
	t.Helper()
	wlCheckAtomic(t, name, evs, respOf)
	seen := map[string]bool{}
	for i, ev := range evs {
		k := string(ev.Kv.Key)
		switch {
		case ev.Kv.ModRevision != first+int64(i):
			t.Fatalf("watch %s: event %d at revision %d, want %d (gap or duplicate)", name, i, ev.Kv.ModRevision, first+int64(i))
		case ev.Type != mvccpb.PUT || !w.attempted[k] || string(ev.Kv.Value) != writerValue(k) || seen[k]:
			t.Fatalf("watch %s: unexpected event %s %s=%q at %d (attempted %v, seen before %v)",
				name, ev.Type, k, ev.Kv.Value, ev.Kv.ModRevision, w.attempted[k], seen[k])
		case w.acked[k] != 0 && w.acked[k] != ev.Kv.ModRevision:
			t.Fatalf("watch %s: %s at revision %d, acknowledged at %d", name, k, ev.Kv.ModRevision, w.acked[k])
		}
		seen[k] = true
	}
	for k, rev := range w.acked {
		if !seen[k] {
			t.Fatalf("watch %s: acknowledged put of %s at revision %d never seen", name, k, rev)
		}
	}
}

// TestWatchResumeAfterMemberKilled: a client watching through one member
// loses nothing and sees nothing twice when that member is killed and the
// client resumes from its last revision + 1 on another member; and a watch
// on a follower goes on seamlessly across a leader change.
func TestWatchResumeAfterMemberKilled(t *testing.T) {
	const writes = 200
	t.Run("serving-member-killed", func(t *testing.T) {
		c := framework.NewCluster(t, 3, framework.Options{})
		cli := c.Client(t)
		wlNeedWatch(t, cli)
		leader := c.Leader(t)
		served, other := c.Members[(leader+1)%3], c.Members[(leader+2)%3]

		first := currentRev(t, cli) + 1
		w := wlWatch(t, "on-"+served.Name, framework.NewClient(t, served.Endpoint()), "/wr/", clientv3.WithPrefix(), clientv3.WithRev(first))
		wr := wlStartSeqWriter(framework.NewClient(t, c.Members[leader].Endpoint(), other.Endpoint()), "/wr/", writes, 40*time.Second)
		eventually(t, 20*time.Second, "100 acknowledged writes", func() error {
			if n := wr.ackedN(); n < writes/2 {
				return fmt.Errorf("%d acknowledged", n)
			}
			return nil
		})
		served.Kill(t)
		wr.requireMidRun(t, writes)
		if w.lastRev() < first {
			t.Fatalf("watch on %s received nothing before the kill", served.Name)
		}
		w.resume(framework.NewClient(t, other.Endpoint()))
		wr.wait(t, writes, 45*time.Second)
		w.waitRev(wr.lastAcked, 15*time.Second)
		evs, respOf, _, _, _ := w.snapshot()
		wr.check(t, w.name, evs, respOf, first)
	})
	t.Run("leader-killed", func(t *testing.T) {
		c := framework.NewCluster(t, 3, framework.Options{})
		cli := c.Client(t)
		wlNeedWatch(t, cli)
		leader := c.Leader(t)
		f1, f2 := c.Members[(leader+1)%3], c.Members[(leader+2)%3]

		first := currentRev(t, cli) + 1
		w := wlWatch(t, "on-"+f1.Name, framework.NewClient(t, f1.Endpoint()), "/wl/", clientv3.WithPrefix(), clientv3.WithRev(first))
		wr := wlStartSeqWriter(framework.NewClient(t, f2.Endpoint()), "/wl/", writes, 40*time.Second)
		eventually(t, 20*time.Second, "100 acknowledged writes", func() error {
			if n := wr.ackedN(); n < writes/2 {
				return fmt.Errorf("%d acknowledged", n)
			}
			return nil
		})
		c.Members[leader].Kill(t)
		wr.requireMidRun(t, writes)
		if nl := c.Leader(t); nl == leader {
			t.Fatalf("killed leader still leads")
		}
		wr.wait(t, writes, 45*time.Second)
		w.waitRev(wr.lastAcked, 15*time.Second)
		evs, respOf, _, closed, err := w.snapshot()
		if closed || err != nil {
			t.Fatalf("watch on %s across the leader change: closed %v, err %v", f1.Name, closed, err)
		}
		wr.check(t, w.name, evs, respOf, first)
	})
}

const hcKeys = 10

func hcKey(i int) string { return fmt.Sprintf("hc/k%d", i) }

// hcWriter issues a random mix of puts, deletes, range deletes and txns on
// the hcKeys keys until stop is closed (at most 5000 operations).
func hcWriter(cli *clientv3.Client, id int, seed uint64, stop <-chan struct{}, wg *sync.WaitGroup) {
	defer wg.Done()
	rng := rand.New(rand.NewPCG(seed, uint64(id)))
	for n := range 5000 {
		select {
		case <-stop:
			return
		default:
		}
		val := fmt.Sprintf("w%d-%d", id, n)
		p := rng.Perm(hcKeys)
		a, b, c := hcKey(p[0]), hcKey(p[1]), hcKey(p[2])
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		var err error
		switch x := rng.IntN(100); {
		case x < 50:
			_, err = cli.Put(ctx, a, val)
		case x < 65:
			_, err = cli.Delete(ctx, a)
		case x < 85:
			_, err = cli.Txn(ctx).If(clientv3.Compare(clientv3.Version(a), ">", 0)).
				Then(clientv3.OpPut(b, val), clientv3.OpDelete(c)).
				Else(clientv3.OpPut(a, val), clientv3.OpPut(c, val+"c")).Commit()
		case x < 95:
			lo := rng.IntN(hcKeys - 3)
			_, err = cli.Delete(ctx, hcKey(lo), clientv3.WithRange(hcKey(lo+3)))
		default: // writes nothing: no revision
			_, err = cli.Txn(ctx).If(clientv3.Compare(clientv3.Value(a), "=", "never")).Then(clientv3.OpPut(a, val)).Commit()
		}
		cancel()
		if err != nil {
			time.Sleep(50 * time.Millisecond)
		}
	}
}

// TestWatchHistoryCheck: concurrent writers on 10 keys with a leader kill
// in the middle; watchers from revision R on every member (the one on the
// killed leader resumed elsewhere), on a balanced client, and on the killed
// member after its restart, each receive exactly the events that ranges at
// each revision imply: every revision from R to the end once, in order,
// atomically, with correct versions and prev_kv, the same on all watchers.
func TestWatchHistoryCheck(t *testing.T) {
	c := framework.NewCluster(t, 3, framework.Options{})
	cli := c.Client(t)
	wlNeedWatch(t, cli)
	for i := range hcKeys {
		if _, err := cli.Put(bg(t), hcKey(i), "init"); err != nil {
			t.Fatal(err)
		}
	}
	R := currentRev(t, cli) - 4 // part of the history is replayed
	leader := c.Leader(t)
	opts := []clientv3.OpOption{clientv3.WithPrefix(), clientv3.WithRev(R), clientv3.WithPrevKV()}
	var watchers []*wlWatcher
	for _, m := range c.Members {
		watchers = append(watchers, wlWatch(t, "on-"+m.Name, framework.NewClient(t, m.Endpoint()), "hc/", opts...))
	}
	watchers = append(watchers, wlWatch(t, "balanced", c.Client(t), "hc/", opts...))

	seed := uint64(time.Now().UnixNano())
	t.Logf("writer seed %d", seed)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for id := range 3 {
		wg.Add(1)
		go hcWriter(c.Client(t), id, seed, stop, &wg)
	}
	stopWriters := func() {
		select {
		case <-stop:
			return
		default:
			close(stop)
		}
		done := make(chan struct{})
		go func() { wg.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatal("writers did not stop within 10s")
		}
	}
	defer stopWriters()

	time.Sleep(1500 * time.Millisecond)
	killed := c.Members[leader]
	killed.Kill(t)
	watchers[leader].resume(framework.NewClient(t, c.Members[(leader+1)%3].Endpoint()))
	if nl := c.Leader(t); nl == leader {
		t.Fatal("killed leader still leads")
	}
	time.Sleep(1500 * time.Millisecond)
	stopWriters()

	live := liveClient(t, c)
	final := currentRev(t, live)
	if final < R+50 {
		t.Fatalf("only %d revisions written; the check needs traffic", final-R)
	}
	killed.Restart(t)
	watchers = append(watchers, wlWatch(t, "restarted-"+killed.Name, framework.NewClient(t, killed.Endpoint()), "hc/", opts...))
	for _, w := range watchers {
		w.waitRev(final, 20*time.Second)
	}

	// The states a range at each sampled revision returns.
	rangeAt := func(rev int64) map[string]*mvccpb.KeyValue {
		r, err := live.Get(bg(t), "hc/", clientv3.WithPrefix(), clientv3.WithRev(rev))
		if err != nil {
			t.Fatalf("range at %d: %v", rev, err)
		}
		m := map[string]*mvccpb.KeyValue{}
		for _, kv := range r.Kvs {
			m[string(kv.Key)] = kv
		}
		return m
	}
	samples := map[int64]map[string]*mvccpb.KeyValue{}
	const nSamples = 60
	for i := range int64(nSamples + 1) {
		rev := R + (final-R)*i/nSamples
		samples[rev] = rangeAt(rev)
	}
	initial := rangeAt(R - 1)
	t.Logf("%d revisions from %d to %d; %d sampled", final-R+1, R, final, len(samples))

	var ref []wlEv
	for _, w := range watchers {
		evs, respOf, _, _, _ := w.snapshot()
		hcReplay(t, w.name, evs, respOf, R, final, initial, samples)
		got := make([]wlEv, len(evs))
		for i, ev := range evs {
			got[i] = wlFromEvent(ev)
		}
		if ref == nil {
			ref = got
			continue
		}
		if len(got) != len(ref) {
			t.Fatalf("watch %s: %d events, watch %s: %d", w.name, len(got), watchers[0].name, len(ref))
		}
		for i := range got {
			if got[i] != ref[i] {
				t.Fatalf("watch %s event %d: %v, watch %s: %v", w.name, i, got[i], watchers[0].name, ref[i])
			}
		}
	}
}

// hcReplay applies evs (a watch from R with prev_kv) to the state at R-1
// and fails the test unless every revision R..final is present once and in
// order, each event is consistent with the state before it, and the state
// equals the range result at every sampled revision.
func hcReplay(t *testing.T, name string, evs []*clientv3.Event, respOf []int, R, final int64,
	initial map[string]*mvccpb.KeyValue, samples map[int64]map[string]*mvccpb.KeyValue) {
	t.Helper()
	wlCheckAtomic(t, name, evs, respOf)
	state := map[string]*mvccpb.KeyValue{}
	for k, v := range initial {
		state[k] = v
	}
	cur := R - 1
	endRev := func() { // the state after revision cur is complete
		if want, ok := samples[cur]; ok {
			if d := hcDiff(state, want); d != "" {
				t.Fatalf("watch %s: state after revision %d differs from a range at %d: %s", name, cur, cur, d)
			}
		}
	}
	for i, ev := range evs {
		rev := ev.Kv.ModRevision
		if rev != cur {
			if rev != cur+1 {
				t.Fatalf("watch %s: event %d at revision %d after revision %d: revisions missing", name, i, rev, cur)
			}
			if cur >= R {
				endRev()
			}
			cur = rev
		}
		k := string(ev.Kv.Key)
		prev := state[k]
		switch {
		case prev == nil && ev.PrevKv != nil, prev != nil && (ev.PrevKv == nil || !hcSameKV(prev, ev.PrevKv)):
			t.Fatalf("watch %s: %s %s at %d: prev_kv %v, state before %v", name, ev.Type, k, rev, ev.PrevKv, prev)
		case ev.Type == mvccpb.DELETE && prev == nil:
			t.Fatalf("watch %s: delete of absent key %s at %d", name, k, rev)
		case ev.Type == mvccpb.DELETE:
			delete(state, k)
		case prev == nil && (ev.Kv.CreateRevision != rev || ev.Kv.Version != 1 || !ev.IsCreate()):
			t.Fatalf("watch %s: creating put %s at %d: create %d version %d", name, k, rev, ev.Kv.CreateRevision, ev.Kv.Version)
		case prev != nil && (ev.Kv.CreateRevision != prev.CreateRevision || ev.Kv.Version != prev.Version+1 || !ev.IsModify()):
			t.Fatalf("watch %s: put %s at %d: create %d version %d, before create %d version %d",
				name, k, rev, ev.Kv.CreateRevision, ev.Kv.Version, prev.CreateRevision, prev.Version)
		default:
			state[k] = ev.Kv
		}
	}
	if cur != final {
		t.Fatalf("watch %s: last revision %d, want %d", name, cur, final)
	}
	endRev()
}

func hcSameKV(a, b *mvccpb.KeyValue) bool {
	return string(a.Key) == string(b.Key) && string(a.Value) == string(b.Value) && a.CreateRevision == b.CreateRevision &&
		a.ModRevision == b.ModRevision && a.Version == b.Version && a.Lease == b.Lease
}

func hcDiff(got, want map[string]*mvccpb.KeyValue) string {
	for k, w := range want {
		if g := got[k]; g == nil || !hcSameKV(g, w) {
			return fmt.Sprintf("key %s: replayed %v, range %v", k, g, w)
		}
	}
	for k, g := range got {
		if want[k] == nil {
			return fmt.Sprintf("key %s: replayed %v, absent from the range", k, g)
		}
	}
	return ""
}
