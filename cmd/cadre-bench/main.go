// Command cadre-bench measures Cadre side by side with etcd v3.7.3 on the
// same machine, in the same run, with the same clients, and prints the
// ratio of every figure (issue 6). See docs/PERFORMANCE.md.
//
//	go run ./cmd/cadre-bench                 # full run, etcd then Cadre
//	go run ./cmd/cadre-bench -smoke          # CI: Cadre only, tiny loads
//	go run ./cmd/cadre-bench -only put1,watch -duration 5s
//	go run ./cmd/cadre-bench -only scale -scale 1000000   # scale rows, ~1 GiB
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"
)

// workloadNames in run order; -only picks a subset. "scale" runs only
// with -scale N, on fresh clusters after the others.
func workloadNames() []string {
	return []string{"rss", "put1", "put100", "range", "txn", "cas", "watch", "learner", "gap", "leases", "scale"}
}

// params scale the workloads; smoke mode shrinks them.
type params struct {
	Duration       time.Duration `json:"duration"`
	Watchers       int           `json:"watchers"`
	WatchKeys      int           `json:"watch_keys"`
	WatchRate      int           `json:"watch_puts_per_second"`
	LoadKeys       int           `json:"load_keys"`
	LoadValue      int           `json:"load_value_bytes"`
	GapBefore      time.Duration `json:"gap_before"`
	GapAfter       time.Duration `json:"gap_after"`
	LearnerTimeout time.Duration `json:"learner_timeout"`
	LeaseKeyspace  int           `json:"lease_keyspace"` // keys present while leases are revoked and expire
	Builtin        bool          `json:"builtin_load"`   // own client/v3 loads instead of etcd's benchmark tool
	ScaleKeys      int           `json:"scale_keys"`     // -scale: 1 KiB keys of the scale rows (0 = no scale rows)
}

type bench struct {
	out    string
	p      params
	sel    map[string]bool
	res    *results
	reg    *procs
	logf   func(string, ...any)
	stdout io.Writer
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run is the whole command; it returns the exit code. Every process it
// starts is killed before it returns, also on Ctrl-C and on failure.
func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("cadre-bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	out := fs.String("out", "", "directory for raw outputs, summary and the members' data dirs (default: a new temp dir)")
	dur := fs.Duration("duration", 10*time.Second, "length of each throughput/latency workload; also scales the learner load (10,000 keys per second of it, at most 100,000)")
	only := fs.String("only", "", "comma-separated workloads to run (default all): "+strings.Join(workloadNames(), ","))
	cadreOnly := fs.Bool("cadre-only", false, "measure Cadre only (no etcd build or run)")
	smoke := fs.Bool("smoke", false, "CI smoke run: Cadre only, a few seconds per workload, tiny loads, nothing built from the module proxy")
	scale := fs.Int("scale", 0, "also run the scale rows with this many 1 KiB keys on fresh clusters (1000000 = about 1 GiB); 0 = off")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	durSet := false
	fs.Visit(func(f *flag.Flag) { durSet = durSet || f.Name == "duration" })
	b := &bench{res: newResults(), reg: &procs{}, stdout: stdout, sel: map[string]bool{}}
	b.logf = func(format string, a ...any) {
		fmt.Fprintf(stderr, "%s cadre-bench: %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, a...))
	}
	for _, w := range strings.Split(*only, ",") {
		if w = strings.TrimSpace(w); w == "" {
			continue
		}
		if !slices.Contains(workloadNames(), w) {
			fmt.Fprintf(stderr, "cadre-bench: unknown workload %q in -only; expected some of %s\n", w, strings.Join(workloadNames(), ","))
			return 2
		}
		b.sel[w] = true
	}
	if b.sel["scale"] && *scale <= 0 {
		fmt.Fprintf(stderr, "cadre-bench: -only scale needs -scale N (keys to load)\n")
		return 2
	}
	if len(b.sel) == 0 {
		for _, w := range workloadNames() {
			b.sel[w] = true
		}
	}
	b.sel["scale"] = *scale > 0
	b.sel["rss"] = true // idle RSS costs nothing and anchors every run
	b.p = fullParams(*dur)
	if *smoke {
		*cadreOnly = true
		if !durSet {
			*dur = 2 * time.Second
		}
		b.p = smokeParams(*dur)
	}
	b.p.ScaleKeys = max(0, *scale)

	// A hard cap on the whole run, and Ctrl-C / SIGTERM cancel it.
	limit := 30 * time.Minute
	if *smoke {
		limit = 5 * time.Minute
	}
	limit += scaleBudget(b.p.ScaleKeys)
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	defer b.reg.killAll()

	if err := b.main(ctx, *out, *cadreOnly); err != nil {
		b.logf("failed: %v", err)
		if ctx.Err() != nil {
			b.logf("interrupted or over the %v cap; all servers were killed", limit)
		}
		return 1
	}
	return 0
}

func fullParams(d time.Duration) params {
	return params{
		Duration: d, Watchers: 1000, WatchKeys: 100, WatchRate: 100,
		LoadKeys: min(100_000, max(1_000, int(10_000*d.Seconds()))), LoadValue: 1024,
		GapBefore: time.Second, GapAfter: 3 * time.Second, LearnerTimeout: 3 * time.Minute,
		LeaseKeyspace: 200_000,
	}
}

func smokeParams(d time.Duration) params {
	return params{
		Duration: d, Watchers: 100, WatchKeys: 20, WatchRate: 50,
		LoadKeys: 2_000, LoadValue: 1024,
		GapBefore: 500 * time.Millisecond, GapAfter: 1500 * time.Millisecond, LearnerTimeout: 20 * time.Second,
		LeaseKeyspace: 2_000, Builtin: true,
	}
}

func (b *bench) main(ctx context.Context, out string, cadreOnly bool) error {
	if out == "" {
		d, err := os.MkdirTemp("", "cadre-bench-")
		if err != nil {
			return err
		}
		out = d
	}
	out, err := filepath.Abs(out)
	if err != nil {
		return err
	}
	b.out = out
	for _, d := range []string{"raw", "bin"} {
		if err := os.MkdirAll(filepath.Join(out, d), 0o755); err != nil {
			return err
		}
	}
	b.logf("output in %s", out)

	m := describeMachine(out)
	m.FsyncIters = 200
	if m.FsyncP50ms, m.FsyncP99ms, err = fsyncLatency(out, m.FsyncIters); err != nil {
		return fmt.Errorf("measuring fsync latency in %s: %w", out, err)
	}
	if err := m.measureFloor(); err != nil {
		return err
	}
	b.logf("%s", m)

	root, err := moduleRoot()
	if err != nil {
		return err
	}
	b.logf("building cadre")
	cadreBin, err := buildCadre(ctx, root, filepath.Join(out, "bin"))
	if err != nil {
		return err
	}
	var etcdBin, toolBin string
	if !cadreOnly || !b.p.Builtin {
		cache, err := toolsCacheDir()
		if err != nil {
			return err
		}
		if !cadreOnly {
			if etcdBin, err = buildEtcdTool(ctx, cache, "etcd", etcdModule, etcdVersion, etcdModule, b.logf); err != nil {
				return err
			}
		}
		if !b.p.Builtin {
			if toolBin, err = buildEtcdTool(ctx, cache, "benchmark", benchToolModule, benchToolVersion, benchToolPkg, b.logf); err != nil {
				return err
			}
		}
	}

	// Both clusters run side by side and every workload runs on etcd, then
	// at once on Cadre: outside load that comes and goes hits both sides of
	// a row alike, instead of one whole phase.
	kinds := []serverKind{{"etcd", etcdBin}, {"cadre", cadreBin}}
	if cadreOnly {
		kinds = kinds[1:]
	}
	var sides []*side
	defer func() {
		for _, sd := range sides {
			sd.close()
		}
	}()
	for _, k := range kinds {
		sd, err := b.startSide(ctx, k.kind, k.kind, k.bin, toolBin, regularQuota)
		if err != nil {
			return err
		}
		sides = append(sides, sd)
	}
	if err := b.runInterleaved(ctx, sides, regularSteps()); err != nil {
		return err
	}

	if b.sel["scale"] {
		// The scale rows get fresh clusters; the others' are done.
		for _, sd := range sides {
			sd.close()
		}
		sides = nil
		if err := b.runScale(ctx, kinds, toolBin); err != nil {
			return err
		}
	}

	table := b.res.table(b.sel, m, b.p.ScaleKeys)
	fmt.Fprintf(b.stdout, "\n%s\n\n%s", m, table)
	if len(b.res.Notes["etcd"])+len(b.res.Notes["cadre"]) > 0 {
		fmt.Fprintf(b.stdout, "\nnotes:\n")
		for _, s := range []string{"etcd", "cadre"} {
			for _, n := range b.res.Notes[s] {
				fmt.Fprintf(b.stdout, "  [%s] %s\n", s, n)
			}
		}
	}
	fmt.Fprintf(b.stdout, "\nraw outputs and summary.json in %s\n", out)
	return writeSummary(out, m, b.res, table, map[string]any{"params": b.p, "cadre_only": cadreOnly,
		"etcd": etcdVersion, "benchmark_tool": benchToolVersion})
}

// side is one server kind's 3-member cluster and its workloads.
type side struct {
	kind   string
	c      *cluster
	w      *workloads
	close  func()
	broken bool // the cluster lost its quorum: its remaining rows are skipped
}

// startSide starts a fresh 3-member cluster of one kind in b.out/name.
func (b *bench) startSide(ctx context.Context, name, kind, bin, toolBin string, quota int64) (*side, error) {
	dir := filepath.Join(b.out, name)
	c, err := newCluster(kind, bin, dir, 3, quota, b.reg)
	if err != nil {
		return nil, err
	}
	closeFn := func() {
		c.close()
		for _, m := range c.members {
			_ = copyFile(filepath.Join(b.out, "raw", name+"-"+m.name+".log"), m.logPath)
			// The data dirs (100+ MB after the load) are not worth keeping.
			_ = os.RemoveAll(m.dataDir)
		}
	}
	b.logf("[%s] starting 3 members in %s", kind, dir)
	if err := c.start(ctx); err != nil {
		closeFn()
		return nil, err
	}
	if _, _, err := c.leader(ctx, 20*time.Second); err != nil {
		closeFn()
		return nil, err
	}
	return &side{kind: kind, c: c, w: &workloads{b: b, c: c, kind: kind, tool: toolBin}, close: closeFn}, nil
}

// step is one workload (or one phase of the scale workload); a failed
// fatal step skips the side's remaining steps.
type step struct {
	name, workload string
	fn             func(*workloads, context.Context) error
	fatal          bool
}

func regularSteps() []step {
	s := func(name string, fn func(*workloads, context.Context) error) step {
		return step{name: name, workload: name, fn: fn}
	}
	return []step{
		s("rss", (*workloads).rssIdle), s("put1", (*workloads).put1), s("put100", (*workloads).put100),
		s("range", (*workloads).rangeOne), s("txn", (*workloads).txnMixed), s("cas", (*workloads).cas),
		s("watch", (*workloads).watch), s("learner", (*workloads).learner), s("gap", (*workloads).gaps),
		s("leases", (*workloads).leases),
	}
}

// runInterleaved runs every selected step on each side in turn. A
// failing step is noted and the next one runs; only Ctrl-C ends the run
// early.
func (b *bench) runInterleaved(ctx context.Context, sides []*side, steps []step) error {
	for _, s := range steps {
		if !b.sel[s.workload] {
			continue
		}
		for _, sd := range sides {
			if sd.broken {
				continue
			}
			b.logf("[%s] %s", sd.kind, s.name)
			err := s.fn(sd.w, ctx)
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if err != nil {
				b.logf("[%s] %s failed: %v", sd.kind, s.name, err)
				b.res.note(sd.kind, "%s: %v", s.name, err)
				if s.fatal || (errors.Is(err, ErrCluster) && len(sd.c.running()) < 2) {
					sd.broken = true
				}
			}
		}
	}
	return nil
}
