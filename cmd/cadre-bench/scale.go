package main

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// The scale rows (-scale N): what a large keyspace costs each server. A
// fresh 3-member cluster of each kind is loaded with N distinct keys of
// 1 KiB; then, phase by phase on etcd and at once on Cadre: a 10,000-key
// range, compaction of half the history under a small writer, defrag of
// one member, a restart of every member, and a learner's catch-up.
const (
	scaleValue         = 1024
	scaleRangeKeys     = 10_000
	scaleRangeSamples  = 5
	scalePutTries      = 3 // a load put is retried so the keyspace is whole
	scaleWriterTimeout = 5 * time.Second
	scaleAdminTimeout  = 15 * time.Minute // one compaction or defrag of ~1 GiB
	// One linearizable read after the restart: short, so a try that waits
	// for a member still starting does not hide the moment it is ready
	// (a single-key read takes milliseconds once it is).
	scaleProbeTimeout = 250 * time.Millisecond
	scaleProbeEvery   = 20 * time.Millisecond
	scaleWriterIdle   = 500 * time.Millisecond // writer runs this long before and after the compaction
)

// serverKind is one server to compare and its binary.
type serverKind struct{ kind, bin string }

func scaleKey(i int) string { return fmt.Sprintf("scale/%010d", i) }

// scaleBudget is extra time the run may take for n scale keys (a cap,
// not an estimate: it assumes a slow 250 keys/s per server).
func scaleBudget(n int) time.Duration {
	if n <= 0 {
		return 0
	}
	return 15*time.Minute + time.Duration(n)*8*time.Millisecond
}

func scaleSteps() []step {
	s := func(name string, fn func(*workloads, context.Context) error, fatal bool) step {
		return step{name: name, workload: "scale", fn: fn, fatal: fatal}
	}
	return []step{
		// Without the whole keyspace the other rows mean nothing, and a
		// cluster that did not come back cannot take a learner.
		s("scale load", (*workloads).scaleLoad, true),
		s("scale range", (*workloads).scaleRange, false),
		s("scale compaction", (*workloads).scaleCompact, false),
		s("scale defrag", (*workloads).scaleDefrag, false),
		s("scale restart", (*workloads).scaleRestart, true),
		s("scale learner", (*workloads).scaleLearner, false),
	}
}

// runScale starts a fresh cluster of each kind (8 GiB quota) and runs the
// scale phases interleaved, like the other workloads.
func (b *bench) runScale(ctx context.Context, kinds []serverKind, toolBin string) error {
	var sides []*side
	defer func() {
		for _, sd := range sides {
			sd.close()
		}
	}()
	for _, k := range kinds {
		sd, err := b.startSide(ctx, k.kind+"-scale", k.kind, k.bin, toolBin, scaleQuota)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			b.res.note(k.kind, "scale: cluster did not start: %v", err)
			continue
		}
		sides = append(sides, sd)
	}
	return b.runInterleaved(ctx, sides, scaleSteps())
}

// scaleLoad writes ScaleKeys distinct keys, one put per request, 100
// clients over 10 connections (own client/v3 code, the same for both
// servers), then samples RSS.
func (w *workloads) scaleLoad(ctx context.Context) error {
	n := w.b.p.ScaleKeys
	val := value(scaleValue)
	spec := loadSpec{name: "scale-load", clients: 100, conns: 10, eps: endpoints(w.c.running()),
		op: func(ctx context.Context, cli *clientv3.Client, i int) error {
			var err error
			for range scalePutTries {
				if _, err = cli.Put(ctx, scaleKey(i), val); err == nil {
					return nil
				}
			}
			return err
		}}
	// The cap assumes at least 500 keys/s.
	res, err := runBuiltin(ctx, spec, time.Minute+time.Duration(n)*2*time.Millisecond, n)
	if err != nil {
		return err
	}
	if res.N != n {
		return fmt.Errorf("%w: scale load: %d of %d keys written (%d failed)", ErrLoad, res.N, n, res.Errors)
	}
	w.logf("scale load: %d keys of %d B, %.0f keys/s", n, scaleValue, res.RPS)
	w.set("scale.load", res.RPS)
	return w.recordRSS(ctx, 2*time.Second, "scale: RSS after load", "scale.rss")
}

// scaleRange is the median latency of a linearizable range over the
// first 10,000 keys (fewer if fewer were loaded); each answer must hold
// every one of them.
func (w *workloads) scaleRange(ctx context.Context) error {
	n := min(scaleRangeKeys, w.b.p.ScaleKeys)
	cli, err := newClient(endpoints(w.c.running()))
	if err != nil {
		return err
	}
	defer cli.Close()
	var ms []float64
	for range scaleRangeSamples {
		rctx, cancel := context.WithTimeout(ctx, time.Minute)
		t := time.Now()
		r, err := cli.Get(rctx, scaleKey(0), clientv3.WithRange(scaleKey(n)))
		d := time.Since(t)
		cancel()
		if err != nil {
			return fmt.Errorf("%w: range of %d keys: %v", ErrLoad, n, err)
		}
		if len(r.Kvs) != n {
			return fmt.Errorf("%w: range of %d keys returned %d", ErrLoad, n, len(r.Kvs))
		}
		ms = append(ms, float64(d.Microseconds())/1000)
	}
	slices.Sort(ms)
	w.logf("scale range of %d keys: %v ms", n, ms)
	w.set("scale.range10k", ms[len(ms)/2])
	return nil
}

// scaleCompact gives the keyspace history to compact, by writing the
// first half of the keys again (txns of 100 puts), then compacts to the
// current revision (physical: the call returns when the member's backend
// is done), which removes the N/2 superseded versions, half of what the
// load wrote. One sequential writer puts meanwhile; the row is the
// compaction's time and the p99 and max of the puts that overlapped it.
func (w *workloads) scaleCompact(ctx context.Context) error {
	eps := endpoints(w.c.running())
	cli, err := newClient(eps)
	if err != nil {
		return err
	}
	defer cli.Close()
	t := time.Now()
	half := w.b.p.ScaleKeys / 2
	if err := putBatched(ctx, cli, half, scaleKey, value(scaleValue)); err != nil {
		return err
	}
	w.logf("scale: wrote the first %d keys again in %v", half, time.Since(t).Round(time.Millisecond))
	gctx, cancel := context.WithTimeout(ctx, opTimeout)
	r, err := cli.Get(gctx, scaleKey(0))
	cancel()
	if err != nil {
		return fmt.Errorf("%w: reading the revision: %v", ErrLoad, err)
	}
	rev := r.Header.Revision

	wr, err := startWriter(ctx, eps)
	if err != nil {
		return err
	}
	_ = sleepCtx(ctx, scaleWriterIdle)
	t0 := time.Now()
	cerr := w.compact(ctx, cli, rev)
	t1 := time.Now()
	_ = sleepCtx(ctx, scaleWriterIdle)
	spans := wr.stop()
	if cerr != nil {
		return fmt.Errorf("%w: compaction to revision %d: %v", ErrLoad, rev, cerr)
	}
	lat, failed := overlapping(spans, t0, t1)
	if len(lat) == 0 {
		return fmt.Errorf("%w: no put overlapped the compaction", ErrLoad)
	}
	if failed > 0 {
		w.b.res.note(w.kind, "scale compaction: %d of %d concurrent puts failed (counted at the time they failed)", failed, len(lat))
	}
	w.logf("scale compaction to revision %d: %v; %d concurrent puts, p99 %.2f ms, max %.2f ms",
		rev, t1.Sub(t0).Round(time.Millisecond), len(lat), pctMS(lat, 99), pctMS(lat, 100))
	w.set("scale.compact", t1.Sub(t0).Seconds())
	w.set("scale.compact.p99", pctMS(lat, 99))
	w.set("scale.compact.max", pctMS(lat, 100))
	return nil
}

// compact compacts to rev and returns when it is done. A server may give
// up on the request while the compaction goes on (Cadre answers "request
// timed out" when applying it outlasts its request timeout); then the end
// is the first linearizable read served after it, since a read waits
// until its member has applied everything committed before it (for a
// server that compacts in the background that is a lower bound).
func (w *workloads) compact(ctx context.Context, cli *clientv3.Client, rev int64) error {
	cctx, cancel := context.WithTimeout(ctx, scaleAdminTimeout)
	defer cancel()
	t := time.Now()
	_, err := cli.Compact(cctx, rev, clientv3.WithCompactPhysical())
	if !errors.Is(err, rpctypes.ErrTimeout) {
		return err
	}
	w.b.res.note(w.kind, "scale compaction: the server gave up on the request after %v (%v); its end is the first linearizable read served after it",
		time.Since(t).Round(time.Millisecond), err)
	// The read may time out at the server too while the apply loop is
	// busy; retried within the same bound.
	for i := 0; i < 1000 && errors.Is(err, rpctypes.ErrTimeout); i++ {
		_, err = cli.Get(cctx, scaleKey(0))
	}
	return err
}

// putSpan is one put of the writer: when it was issued and how long it took.
type putSpan struct {
	start  time.Time
	d      time.Duration
	failed bool
}

// writer is one sequential putter on its own connection.
type writer struct {
	done  chan struct{}
	spans chan []putSpan
	cli   *clientv3.Client
}

func startWriter(ctx context.Context, eps []string) (*writer, error) {
	cli, err := newClient(eps)
	if err != nil {
		return nil, err
	}
	wr := &writer{done: make(chan struct{}), spans: make(chan []putSpan, 1), cli: cli}
	go wr.run(ctx)
	return wr, nil
}

func (wr *writer) run(ctx context.Context) {
	var spans []putSpan
	val := value(valSize)
	// Bounded by stop (and ctx) and by a hard cap on iterations.
	for i := 0; i < 10_000_000 && ctx.Err() == nil && !closed(wr.done); i++ {
		pctx, cancel := context.WithTimeout(ctx, scaleWriterTimeout)
		t := time.Now()
		_, err := wr.cli.Put(pctx, "scale-writer/"+strconv.Itoa(i%100), val)
		spans = append(spans, putSpan{start: t, d: time.Since(t), failed: err != nil})
		cancel()
	}
	wr.spans <- spans
}

func (wr *writer) stop() []putSpan {
	close(wr.done)
	s := <-wr.spans
	_ = wr.cli.Close()
	return s
}

// overlapping are the latencies of the puts running at any time in
// [t0, t1], and how many of them failed.
func overlapping(spans []putSpan, t0, t1 time.Time) ([]time.Duration, int) {
	var lat []time.Duration
	failed := 0
	for _, s := range spans {
		if s.start.After(t1) || s.start.Add(s.d).Before(t0) {
			continue
		}
		lat = append(lat, s.d)
		if s.failed {
			failed++
		}
	}
	return lat, failed
}

// scaleDefrag defragments one follower and times it.
func (w *workloads) scaleDefrag(ctx context.Context) error {
	lead, _, err := w.c.leader(ctx, 20*time.Second)
	if err != nil {
		return err
	}
	fs := others(w.c, lead)
	if len(fs) == 0 {
		return fmt.Errorf("%w: no follower to defragment", ErrCluster)
	}
	m := fs[0]
	cli, err := newClient([]string{m.client})
	if err != nil {
		return err
	}
	defer cli.Close()
	dctx, cancel := context.WithTimeout(ctx, scaleAdminTimeout)
	defer cancel()
	t := time.Now()
	if _, err := cli.Defragment(dctx, m.client); err != nil {
		return fmt.Errorf("%w: defragmenting %s: %v", ErrLoad, m.name, err)
	}
	d := time.Since(t)
	w.logf("scale defrag of %s (follower): %v", m.name, d.Round(time.Millisecond))
	w.set("scale.defrag", d.Seconds())
	return nil
}

// scaleRestart kills every member with SIGKILL (a whole-cluster crash:
// each must open its backend, rebuild its index and replay its WAL, then
// elect a leader), starts them all again, and times from the start to
// the first linearizable read served.
func (w *workloads) scaleRestart(ctx context.Context) error {
	ms := w.c.running()
	if err := killAll(ms); err != nil {
		return err
	}
	t0 := time.Now()
	for _, m := range ms {
		if err := m.start(); err != nil {
			return err
		}
	}
	timeout := healthTimeout + time.Duration(w.b.p.ScaleKeys)*time.Millisecond/2
	d, fails, err := firstLinearizableRead(ctx, endpoints(ms), t0, timeout)
	if err != nil {
		return err
	}
	w.logf("scale restart: first linearizable read %v after the start; %d failed tries before: %s", d.Round(time.Millisecond), len(fails), strings.Join(fails, "; "))
	w.set("scale.restart", d.Seconds())
	for _, m := range ms {
		if err := m.waitHealthy(ctx, healthTimeout); err != nil {
			return err
		}
	}
	return nil
}

func killAll(ms []*member) error {
	var wg sync.WaitGroup
	errs := make([]error, len(ms))
	for i, m := range ms {
		wg.Add(1)
		go func() { defer wg.Done(); errs[i] = m.kill() }()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// firstLinearizableRead retries a linearizable Get every 20 ms until one
// succeeds, and returns the time since t0 and what each failed try got
// (the first few). Each try uses a new client, so no gRPC reconnect
// backoff from the refused dials of the first tries delays a later one.
func firstLinearizableRead(ctx context.Context, eps []string, t0 time.Time, timeout time.Duration) (time.Duration, []string, error) {
	deadline := t0.Add(timeout)
	var fails []string
	var last error
	for time.Now().Before(deadline) {
		ts := time.Now()
		if last = readOnce(ctx, eps); last == nil {
			return time.Since(t0), fails, nil
		}
		if len(fails) < 10 {
			fails = append(fails, fmt.Sprintf("%.2f s: %v after %v", ts.Sub(t0).Seconds(), last, time.Since(ts).Round(time.Millisecond)))
		}
		if err := sleepCtx(ctx, scaleProbeEvery); err != nil {
			return 0, fails, err
		}
	}
	return 0, fails, fmt.Errorf("%w: no linearizable read within %v of the restart (last: %v)", ErrCluster, timeout, last)
}

func readOnce(ctx context.Context, eps []string) error {
	cli, err := newClient(eps)
	if err != nil {
		return err
	}
	defer cli.Close()
	rctx, cancel := context.WithTimeout(ctx, scaleProbeTimeout)
	defer cancel()
	_, err = cli.Get(rctx, scaleKey(0))
	return err
}

// scaleLearner times a learner joining the loaded cluster.
func (w *workloads) scaleLearner(ctx context.Context) error {
	// It follows the restart: both servers refuse a member add until the
	// leader has had a quorum in contact for 5 s (strict reconfig check).
	if err := sleepCtx(ctx, strictSettle); err != nil {
		return err
	}
	timeout := w.b.p.LearnerTimeout + time.Duration(w.b.p.ScaleKeys)*time.Millisecond/2
	res, err := addLearner(ctx, w.c, timeout)
	if err != nil {
		return err
	}
	w.logf("scale learner: promoted %v after member add (%d promote tries)", res.CatchUp.Round(time.Millisecond), res.Tries)
	w.set("scale.learner", res.CatchUp.Seconds())
	return nil
}
