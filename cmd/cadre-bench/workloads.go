package main

import (
	"context"
	"fmt"
	"math"
	"path/filepath"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// Sizes fixed by issue 6.
const (
	valSize       = 256
	putKeySpace   = 100_000
	txnKeySpace   = 1_000
	rangeKey      = "bench-range-key"
	walFsyncCount = "etcd_disk_wal_fsync_duration_seconds_count"
	// strictSettle: both servers refuse a removal until the leader has had
	// a quorum in contact for 5 s; wait that long after a restart.
	strictSettle = 6 * time.Second
)

// workloads runs each measurement against one cluster and records it.
type workloads struct {
	b    *bench
	c    *cluster
	kind string
	tool string // etcd benchmark tool binary; "" in built-in mode
}

func (w *workloads) set(key string, v float64) { w.b.res.set(w.kind, key, v) }

func (w *workloads) logf(format string, a ...any) {
	w.b.logf("[%s]   %s", w.kind, fmt.Sprintf(format, a...))
}

// load runs spec with the benchmark tool, or built-in in smoke mode.
func (w *workloads) load(ctx context.Context, spec loadSpec) (loadResult, error) {
	var res loadResult
	var err error
	before, cerr := sampleCPU(w.c.running())
	if w.b.p.Builtin || spec.toolArgs == nil {
		res, err = runBuiltin(ctx, spec, w.b.p.Duration, 1<<30)
	} else {
		raw := filepath.Join(w.b.out, "raw", w.kind+"-"+spec.name+".txt")
		res, err = runTool(ctx, w.tool, spec, w.b.p.Duration, raw)
	}
	if err != nil {
		return res, err
	}
	res.CPUPer10k = w.cpuPer10k(spec.name, before, cerr, res.N)
	w.logf("%s: %.0f req/s, p50 %.2f ms, p99 %.2f ms, server CPU %.2f s per %d requests (%d requests, %d errors, %s)",
		spec.name, res.RPS, res.P50, res.P99, res.CPUPer10k, cpuPer, res.N, res.Errors, res.Via)
	if res.Errors > 0 {
		w.b.res.note(w.kind, "%s: %d failed requests", spec.name, res.Errors)
	}
	return res, nil
}

// cpuPer10k is the members' CPU seconds since before per cpuPer requests
// (NaN, and a note, when it cannot be known).
func (w *workloads) cpuPer10k(name string, before cpuSample, berr error, n int) float64 {
	after, err := sampleCPU(w.c.running())
	var used float64
	if err == nil {
		err = berr
	}
	if err == nil {
		used, err = cpuSince(before, after)
	}
	if err == nil && n == 0 {
		err = fmt.Errorf("no requests")
	}
	if err != nil {
		w.b.res.note(w.kind, "%s: no server CPU figure: %v", name, err)
		return math.NaN()
	}
	return used / float64(n) * cpuPer
}

func maxOf(ms []*member, f func(*member) float64) float64 {
	var m float64
	for _, x := range ms {
		m = max(m, f(x))
	}
	return m
}

// recordRSS waits settle, logs every running member's RSS and records the
// largest under key, and the largest peak RSS so far (VmHWM) under
// key+".peak": Cadre returns a burst's free heap to the OS once it is
// quiet, so the figure after a load is not the most it used.
func (w *workloads) recordRSS(ctx context.Context, settle time.Duration, label, key string) error {
	if err := sleepCtx(ctx, settle); err != nil {
		return err
	}
	for _, m := range w.c.running() {
		w.logf("%s %s: %.1f MiB (peak so far %.1f MiB)", label, m.name, m.rssMB(), m.peakRSSMB())
	}
	w.set(key, maxOf(w.c.running(), (*member).rssMB))
	w.set(key+".peak", maxOf(w.c.running(), (*member).peakRSSMB))
	return nil
}

func (w *workloads) rssIdle(ctx context.Context) error {
	// Let start-up allocation settle before sampling.
	return w.recordRSS(ctx, 3*time.Second, "RSS idle", "rss.idle")
}

func putArgs(keySpace int) []string {
	return []string{"put", "--key-size", "8", "--val-size", fmt.Sprint(valSize), "--key-space-size", fmt.Sprint(keySpace)}
}

// put1 talks to the leader only, so the figure is one round of consensus
// without a follower's forwarding hop.
func (w *workloads) put1(ctx context.Context) error {
	lead, _, err := w.c.leader(ctx, 20*time.Second)
	if err != nil {
		return err
	}
	res, err := w.load(ctx, loadSpec{name: "put1", clients: 1, conns: 1, eps: []string{lead.client},
		toolArgs: putArgs(putKeySpace), toolRate: 500, op: opPut(putKeySpace, value(valSize))})
	if err != nil {
		return err
	}
	w.set("put1.rps", res.RPS)
	w.set("put1.p50", res.P50)
	w.set("put1.p99", res.P99)
	w.set("put1.cpu", res.CPUPer10k)
	return nil
}

func (w *workloads) put100(ctx context.Context) error {
	lead, _, err := w.c.leader(ctx, 20*time.Second)
	if err != nil {
		return err
	}
	before, ferr := lead.metric(walFsyncCount)
	res, err := w.load(ctx, loadSpec{name: "put100", clients: 100, conns: 10, eps: endpoints(w.c.running()),
		toolArgs: putArgs(putKeySpace), toolRate: 3000, op: opPut(putKeySpace, value(valSize))})
	if err != nil {
		return err
	}
	w.set("put100.rps", res.RPS)
	w.set("put100.p99", res.P99)
	w.set("put100.cpu", res.CPUPer10k)
	if after, err := lead.metric(walFsyncCount); ferr == nil && err == nil && res.N > 0 {
		w.set("put100.fsyncs", (after-before)/float64(res.N))
		w.logf("put100: %.0f WAL fsyncs on the leader for %d puts", after-before, res.N)
	} else {
		w.b.res.note(w.kind, "put100: no WAL fsync count (%v, %v)", ferr, err)
	}
	return nil
}

func (w *workloads) rangeOne(ctx context.Context) error {
	cli, err := newClient(endpoints(w.c.running()))
	if err != nil {
		return err
	}
	pctx, cancel := context.WithTimeout(ctx, opTimeout)
	_, err = cli.Put(pctx, rangeKey, value(valSize))
	cancel()
	_ = cli.Close()
	if err != nil {
		return fmt.Errorf("%w: writing the key to range over: %v", ErrLoad, err)
	}
	for _, mode := range []struct {
		key, flag string
		rate      float64
	}{{"range.l", "l", 5000}, {"range.s", "s", 8000}} {
		res, err := w.load(ctx, loadSpec{name: "range-" + mode.flag, clients: 100, conns: 10, eps: endpoints(w.c.running()),
			toolArgs: []string{"range", rangeKey, "--consistency", mode.flag}, toolRate: mode.rate,
			op: opRange(rangeKey, mode.flag == "s")})
		if err != nil {
			return err
		}
		w.set(mode.key, res.RPS)
		w.set(mode.key+".cpu", res.CPUPer10k)
	}
	return nil
}

// txnMixed is the tool's txn-mixed with its read limited to one key, so
// reads and writes are both single-key (its default reads 1,000 keys).
func (w *workloads) txnMixed(ctx context.Context) error {
	res, err := w.load(ctx, loadSpec{name: "txn-mixed", clients: 50, conns: 10, eps: endpoints(w.c.running()),
		toolArgs: []string{"txn-mixed", "key", "--key-space-size", fmt.Sprint(txnKeySpace), "--rw-ratio", "1",
			"--limit", "1", "--val-size", fmt.Sprint(valSize)},
		toolRate: 700, op: opTxnMixed(txnKeySpace, value(valSize))})
	if err != nil {
		return err
	}
	w.set("txn.rps", res.RPS)
	return nil
}

// cas is our own compare-and-swap loop (the tool has none): the same code
// for both servers.
func (w *workloads) cas(ctx context.Context) error {
	res, err := w.load(ctx, loadSpec{name: "cas", clients: 50, conns: 10, eps: endpoints(w.c.running()),
		op: opCAS(txnKeySpace, value(valSize))})
	if err != nil {
		return err
	}
	w.set("cas.rps", res.RPS)
	return nil
}

func (w *workloads) watch(ctx context.Context) error {
	p := w.b.p
	res, err := runWatch(ctx, endpoints(w.c.running()), p.Watchers, p.WatchKeys, p.WatchRate, p.Duration)
	if err != nil {
		return err
	}
	w.logf("watch: %d watchers, %d of %d events, p50 %.2f ms, p99 %.2f ms", p.Watchers, res.Events, res.Expected, res.P50, res.P99)
	if res.Events < res.Expected {
		w.b.res.note(w.kind, "watch: %d of %d expected events received", res.Events, res.Expected)
	}
	w.set("watch.p50", res.P50)
	w.set("watch.p99", res.P99)
	return nil
}

// learner loads LoadKeys distinct keys of LoadValue bytes, samples RSS,
// then times a learner from `member add --learner` to an accepted promote.
func (w *workloads) learner(ctx context.Context) error {
	p := w.b.p
	n := p.LoadKeys
	// 16-byte keys cannot collide with put100's 8-byte ones.
	spec := loadSpec{name: "load", clients: 100, conns: 10, eps: endpoints(w.c.running()),
		toolArgs: []string{"put", "--key-size", "16", "--val-size", fmt.Sprint(p.LoadValue),
			"--sequential-keys", "--key-space-size", fmt.Sprint(n)},
		op: func(ctx context.Context, cli *clientv3.Client, i int) error {
			_, err := cli.Put(ctx, fmt.Sprintf("load/%010d", i), value(p.LoadValue))
			return err
		}}
	t0 := time.Now()
	var err error
	if p.Builtin {
		var res loadResult
		res, err = runBuiltin(ctx, spec, 5*time.Minute, n)
		if err == nil && res.Errors > 0 {
			w.b.res.note(w.kind, "load: %d failed puts", res.Errors)
		}
	} else {
		// The tool's time cap assumes at least 500 puts/s.
		spec.total = n
		_, err = runTool(ctx, w.tool, spec, time.Second*time.Duration(max(1, n/500)), filepath.Join(w.b.out, "raw", w.kind+"-load.txt"))
	}
	if err != nil {
		return err
	}
	w.logf("load: %d keys of %d B in %v", n, p.LoadValue, time.Since(t0).Round(time.Millisecond))
	if err := w.recordRSS(ctx, 2*time.Second, "RSS after load", "rss.load"); err != nil {
		return err
	}

	res, err := addLearner(ctx, w.c, p.LearnerTimeout)
	if err != nil {
		return err
	}
	w.logf("learner: promoted %v after member add (%d promote tries)", res.CatchUp.Round(time.Millisecond), res.Tries)
	w.set("learner.s", res.CatchUp.Seconds())
	return nil
}

// gaps: kill -9 of the leader (restarted afterwards), then `member remove`
// of the (new) leader.
func (w *workloads) gaps(ctx context.Context) error {
	p := w.b.p
	g, err := gapKill(ctx, w.c, p.GapBefore, p.GapAfter)
	if err != nil {
		return err
	}
	w.logf("gap kill -9: %v", g.Round(time.Millisecond))
	w.set("gap.kill", float64(g.Microseconds())/1000)
	if err := sleepCtx(ctx, strictSettle); err != nil {
		return err
	}
	g, err = gapRemove(ctx, w.c, p.GapBefore, p.GapAfter)
	if err != nil {
		return err
	}
	w.logf("gap member remove: %v", g.Round(time.Millisecond))
	w.set("gap.remove", float64(g.Microseconds())/1000)
	return nil
}
