package robustness

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/cadrekv/cadre/tests/framework"
	"github.com/cadrekv/cadre/tests/lincheck"
)

// Timing of one run: traffic before the first fault, between faults,
// after the last; then every check.
const (
	warmup       = time.Second
	between      = 1500 * time.Millisecond
	tail         = time.Second
	faultsPerRun = 3
	healWithin   = 10 * time.Second
)

// run is one seeded run: a fresh 3-member cluster, traffic, three faults.
type run struct {
	t     *testing.T
	seed  int64
	rng   *rand.Rand
	c     *framework.Cluster
	added int
	net   *network
	ids   map[string]string // member name -> ID as on the wire
	pxs   map[string]*proxy // member name -> the proxy its peers dial
	notes []string
	mu    sync.Mutex
}

func (r *run) note(format string, a ...any) {
	r.mu.Lock()
	r.notes = append(r.notes, fmt.Sprintf(format, a...))
	r.mu.Unlock()
}

// outcome is what the summary table counts.
type outcome struct {
	seed                int64
	faults              []string
	failed              bool
	lost, hashMismatch  int
	ops, acked, revokes int
}

// TestRobustness is the CI tier: 12 fixed seeds, 3 faults each, covering
// the whole menu. -robustness.runs=200 is the long tier;
// -robustness.seed=N replays one run.
func TestRobustness(t *testing.T) {
	framework.SkipUnlessCadre(t)
	seeds := make([]int64, *flagRuns)
	for i := range seeds {
		seeds[i] = int64(i + 1)
	}
	if *flagSeed != 0 {
		seeds = []int64{*flagSeed}
	}
	var outs []outcome
	for _, seed := range seeds {
		var out outcome
		t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) {
			out = runSeed(t, seed)
			out.failed = t.Failed()
		})
		if out.seed == 0 {
			out = outcome{seed: seed, failed: true}
		}
		outs = append(outs, out)
	}
	t.Log("\n" + summary(outs))
}

func runSeed(t *testing.T, seed int64) outcome {
	r := &run{t: t, seed: seed, rng: rand.New(rand.NewPCG(uint64(seed), 0x5eed))}
	out := outcome{seed: seed}
	r.c, r.net, r.ids, r.pxs = proxiedCluster(t)
	for i := range faultsPerRun {
		out.faults = append(out.faults, menu[(int(seed-1)*faultsPerRun+i)%len(menu)].name)
	}
	t.Logf("seed %d: faults %s", seed, strings.Join(out.faults, "; "))

	// Traffic: KV clients pinned to each member and one on all of them
	// (porcupine-checked), a unique-key writer, lease churn, a watcher.
	all := r.c.Endpoints()
	var clis []*clientv3.Client
	for _, m := range r.c.Members {
		clis = append(clis, framework.NewClient(t, m.Endpoint()))
	}
	clis = append(clis, framework.NewClient(t, all...))
	rec := lincheck.NewRecorder()
	kv := lincheck.StartTraffic(rec, clis)
	defer kv.Stop()
	w := startWriter(framework.NewClient(t, all...))
	ls := startLeases(framework.NewClient(t, all...))
	wt := startWatcher(framework.NewClient(t, all...))
	kb := startKube(framework.NewClient(t, all...), seed)

	time.Sleep(warmup)
	var notes []porcupine.Annotation
	for i := range faultsPerRun {
		f := menu[(int(seed-1)*faultsPerRun+i)%len(menu)]
		start := rec.Now()
		f.do(r)
		notes = append(notes, porcupine.Annotation{Tag: "fault", Start: start, End: rec.Now(), Description: f.name})
		time.Sleep(between)
	}
	// Compact most of the history, as the apiserver does every few
	// minutes: watches and reads must go on across it.
	compacted := r.compact()
	time.Sleep(tail)
	kv.Stop()
	acked := w.finish()
	revoked := ls.finish()
	objects, lists, listErrs := kb.finish()
	for _, n := range r.notes {
		t.Log(n)
	}

	// Every member serves within 10 s of the last heal.
	for _, m := range r.c.Members {
		m.WaitHealthy(t, healWithin)
	}
	ok, failedReads, unknown := kv.Summary()
	out.ops, out.acked, out.revokes = ok, len(acked), len(revoked)
	t.Logf("traffic: %d KV ops ok, %d failed reads, %d writes of unknown outcome; %d unique puts acknowledged; %d lease revokes acknowledged",
		ok, failedReads, unknown, len(acked), len(revoked))

	lincheck.Check(t, rec.History(), notes)
	rev := r.settle()
	out.lost = r.checkAcked(acked)
	out.hashMismatch = r.checkHashes(rev)
	events := wt.finish()
	r.checkWatch(events, rev, compacted)
	r.checkRevoked(revoked)
	r.checkObjects(objects)
	t.Logf("kubernetes-style: %d objects, %d paginated lists at one revision", len(objects), lists)
	if listErrs > 0 {
		t.Errorf("%d paginated lists returned a key newer than their pinned revision", listErrs)
	}
	return out
}

// proxiedCluster starts 3 members whose peer traffic all passes through
// the suite's proxies (see netproxy_test.go).
func proxiedCluster(t *testing.T) (*framework.Cluster, *network, map[string]string, map[string]*proxy) {
	// Another process may take a port between FreePorts and the bind:
	// try again on other ports, a bounded number of times.
	var lastErr error
	for attempt := range 3 {
		n := newNetwork()
		ports := framework.FreePorts(t, 6)
		var specs []framework.StaticMember
		for i := range 3 {
			p, err := n.listenProxy()
			if err != nil {
				t.Fatal(err)
			}
			p.serve(fmt.Sprintf("127.0.0.1:%d", ports[2*i+1]))
			specs = append(specs, framework.StaticMember{
				Name:          fmt.Sprintf("infra%d", i+1),
				ClientURL:     fmt.Sprintf("http://127.0.0.1:%d", ports[2*i]),
				PeerURL:       "http://" + p.addr(),
				ListenPeerURL: fmt.Sprintf("http://127.0.0.1:%d", ports[2*i+1]),
			})
		}
		c, err := framework.TryClusterAt(t, specs, framework.Options{Env: []string{walFaultsEnv}})
		if err != nil {
			n.close()
			lastErr = err
			t.Logf("cluster start %d failed (%v); trying other ports", attempt+1, err)
			continue
		}
		t.Cleanup(n.close)
		ids := map[string]string{}
		for name, id := range c.MemberIDs(t) {
			ids[name] = fmt.Sprintf("%016x", id)
		}
		pxs := map[string]*proxy{}
		for i, p := range n.proxies {
			p.setMember(ids[specs[i].Name])
			pxs[specs[i].Name] = p
		}
		return c, n, ids, pxs
	}
	t.Fatalf("cluster did not start in 3 attempts: %v", lastErr)
	return nil, nil, nil, nil
}

// settle waits until every member reports the same revision twice in a
// row (traffic has stopped) and returns it.
func (r *run) settle() int64 {
	var last int64 = -1
	for end := time.Now().Add(20 * time.Second); time.Now().Before(end); time.Sleep(200 * time.Millisecond) {
		revs := map[int64]bool{}
		for _, m := range r.c.Members {
			cli := framework.NewClient(r.t, m.Endpoint())
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			st, err := cli.Status(ctx, m.Endpoint())
			cancel()
			cli.Close()
			if err != nil {
				revs[-1] = true
				continue
			}
			revs[st.Header.Revision] = true
		}
		if len(revs) == 1 {
			for rev := range revs {
				if rev == last && rev > 0 {
					return rev
				}
				last = rev
			}
		}
	}
	r.t.Fatalf("members did not agree on a revision within 20 s of the traffic stopping")
	return 0
}

// checkAcked: every acknowledged unique put is there with its value.
func (r *run) checkAcked(acked map[string]string) int {
	cli := framework.NewClient(r.t, r.c.Endpoints()...)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := cli.Get(ctx, "w/", clientv3.WithPrefix())
	if err != nil {
		r.t.Fatalf("reading the writer's keys: %v", err)
	}
	have := map[string]string{}
	for _, kv := range resp.Kvs {
		have[string(kv.Key)] = string(kv.Value)
	}
	lost := 0
	for k, v := range acked {
		if have[k] != v {
			lost++
			if lost <= 5 {
				r.t.Errorf("acknowledged write lost: %s=%s (now %q)", k, v, have[k])
			}
		}
	}
	return lost
}

// checkHashes: every member's HashKV at rev is the same.
func (r *run) checkHashes(rev int64) int {
	hashes := map[uint32][]string{}
	for _, m := range r.c.Members {
		cli := framework.NewClient(r.t, m.Endpoint())
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		h, err := cli.HashKV(ctx, m.Endpoint(), rev)
		cancel()
		if err != nil {
			r.t.Fatalf("HashKV of %s at %d: %v", m.Name, rev, err)
		}
		hashes[h.Hash] = append(hashes[h.Hash], m.Name)
	}
	if len(hashes) > 1 {
		r.t.Errorf("replicas differ at revision %d: HashKV %v", rev, hashes)
		return len(hashes) - 1
	}
	return 0
}

// checkWatch: the live watcher's events are ordered, without duplicates or
// gaps, each revision delivered whole; and a watch from the first revision
// after the compaction on every member yields exactly the same events as
// the live watcher saw from there (resumable from any retained revision,
// the same history everywhere).
func (r *run) checkWatch(live [][]*mvccpb.Event, rev, compacted int64) {
	var after [][]*mvccpb.Event // the live events past the compaction
	for _, evs := range live {
		// A response may hold several revisions: cut inside it.
		for j, ev := range evs {
			if ev.Kv.ModRevision > compacted {
				after = append(after, evs[j:])
				break
			}
		}
	}
	r.checkOrdered("live watcher", live)
	flat := flatten(after)
	for _, m := range r.c.Members {
		cli := framework.NewClient(r.t, m.Endpoint())
		w := startWatcherAt(cli, compacted+1)
		if !w.until(rev, 15*time.Second) {
			r.t.Errorf("a watch from revision %d on %s did not reach revision %d in 15 s", compacted+1, m.Name, rev)
		}
		got := r.checkOrdered("watch on "+m.Name, w.finish())
		if len(flat) > 0 && len(got) > 0 {
			n := min(len(flat), len(got))
			for i := range n {
				if flat[i] != got[i] {
					r.t.Errorf("watch on %s differs from the live watcher at event %d: %s vs %s", m.Name, i, got[i], flat[i])
					break
				}
			}
		}
	}
}

// compact compacts the history up to 50 revisions ago (physically) and
// returns the revision, 0 if none.
func (r *run) compact() int64 {
	cli := framework.NewClient(r.t, r.c.Endpoints()...)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for i := 0; i < 20; i++ {
		st, err := cli.Get(ctx, "compact-probe")
		if err == nil {
			rev := st.Header.Revision - 50
			if rev <= 1 {
				return 0
			}
			if _, err := cli.Compact(ctx, rev, clientv3.WithCompactPhysical()); err == nil {
				return rev
			}
		}
		time.Sleep(250 * time.Millisecond)
	}
	r.t.Fatalf("could not compact the history")
	return 0
}

// checkObjects: every Kubernetes-style object ends with a value it may end with.
func (r *run) checkObjects(final map[string]map[string]bool) {
	cli := framework.NewClient(r.t, r.c.Endpoints()...)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for key, vals := range final {
		resp, err := cli.Get(ctx, key)
		if err != nil {
			r.t.Fatalf("reading %s: %v", key, err)
		}
		got := ""
		if len(resp.Kvs) == 1 {
			got = string(resp.Kvs[0].Value)
		}
		if !vals[got] {
			r.t.Errorf("object %s holds %q; its last acknowledged write (or one of unknown outcome after it) is one of %v", key, got, vals)
		}
	}
}

// checkOrdered flattens responses to "rev/type/key/value" lines, checking
// order, uniqueness and that no response splits a revision.
func (r *run) checkOrdered(who string, resps [][]*mvccpb.Event) []string {
	var out []string
	var lastRev int64
	seen := map[string]bool{}
	for _, evs := range resps {
		first := evs[0].Kv.ModRevision
		if first <= lastRev {
			r.t.Errorf("%s: revision %d after %d (out of order, duplicated, or a split revision)", who, first, lastRev)
			return out
		}
		for _, line := range flatten([][]*mvccpb.Event{evs}) {
			id, _, _ := strings.Cut(line, "=")
			if seen[id] {
				r.t.Errorf("%s: duplicate event %s", who, id)
			}
			seen[id] = true
			out = append(out, line)
		}
		lastRev = evs[len(evs)-1].Kv.ModRevision
	}
	return out
}

// checkRevoked: no key of an acknowledged revoke exists.
func (r *run) checkRevoked(revoked [][]string) {
	cli := framework.NewClient(r.t, r.c.Endpoints()...)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := cli.Get(ctx, "l/", clientv3.WithPrefix())
	if err != nil {
		r.t.Fatalf("reading leased keys: %v", err)
	}
	live := map[string]bool{}
	for _, kv := range resp.Kvs {
		live[string(kv.Key)] = true
	}
	for _, keys := range revoked {
		for _, k := range keys {
			if live[k] {
				r.t.Errorf("key %s of a revoked lease is back", k)
			}
		}
	}
}

// flatten turns watch responses into "rev/type/key=value" lines.
func flatten(resps [][]*mvccpb.Event) []string {
	var out []string
	for _, evs := range resps {
		for _, ev := range evs {
			out = append(out, fmt.Sprintf("%d/%s/%s=%s", ev.Kv.ModRevision, ev.Type, ev.Kv.Key, ev.Kv.Value))
		}
	}
	return out
}

func summary(outs []outcome) string {
	var b strings.Builder
	runs, failed, lost, mism, faults := len(outs), 0, 0, 0, 0
	for _, o := range outs {
		faults += len(o.faults)
		lost += o.lost
		mism += o.hashMismatch
		if o.failed {
			failed++
		}
	}
	fmt.Fprintf(&b, "%-6s %-7s %-10s %-11s %-15s\n", "runs", "faults", "violations", "lost writes", "hash mismatches")
	fmt.Fprintf(&b, "%-6d %-7d %-10d %-11d %-15d\n", runs, faults, failed, lost, mism)
	for _, o := range outs {
		if o.failed {
			fmt.Fprintf(&b, "FAILED seed %d (%s): replay with -robustness.seed=%d\n", o.seed, strings.Join(o.faults, "; "), o.seed)
		}
	}
	return b.String()
}
