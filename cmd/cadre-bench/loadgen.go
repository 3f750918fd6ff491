package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// ErrLoad marks a load run that produced no usable figure.
var ErrLoad = errors.New("load")

// loadResult is what one load run yields; latencies in milliseconds.
type loadResult struct {
	RPS, P50, P99 float64
	CPUPer10k     float64 // server CPU seconds (all members) per cpuPer requests
	N, Errors     int
	Via           string // "benchmark tool" or "built-in"
}

// loadSpec is one closed-loop workload: clients goroutines over conns
// connections, each issuing one request after the other.
type loadSpec struct {
	name     string
	clients  int
	conns    int
	eps      []string
	toolArgs []string // etcd benchmark tool subcommand and its flags, without --total
	toolRate float64  // expected req/s, to size --total for the wanted duration
	total    int      // --total exactly, instead of toolRate*duration
	op       func(ctx context.Context, cli *clientv3.Client, i int) error
}

// runBuiltin runs spec.op in a closed loop for d (and at most maxOps
// requests), with a 10 s timeout per request.
func runBuiltin(ctx context.Context, spec loadSpec, d time.Duration, maxOps int) (loadResult, error) {
	clis := make([]*clientv3.Client, spec.conns)
	for i := range clis {
		c, err := newClient(spec.eps)
		if err != nil {
			return loadResult{}, err
		}
		defer c.Close()
		clis[i] = c
	}
	var next, errs atomic.Int64
	lats := make([][]time.Duration, spec.clients)
	deadline := time.Now().Add(d)
	start := time.Now()
	var wg sync.WaitGroup
	for w := range spec.clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cli := clis[w%len(clis)]
			for ctx.Err() == nil && time.Now().Before(deadline) {
				i := int(next.Add(1)) - 1
				if i >= maxOps {
					return
				}
				rctx, cancel := context.WithTimeout(ctx, opTimeout)
				t0 := time.Now()
				err := spec.op(rctx, cli, i)
				el := time.Since(t0)
				cancel()
				if err != nil {
					errs.Add(1)
					continue
				}
				lats[w] = append(lats[w], el)
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	if err := ctx.Err(); err != nil {
		return loadResult{}, err
	}
	var all []time.Duration
	for _, l := range lats {
		all = append(all, l...)
	}
	if len(all) == 0 {
		return loadResult{}, fmt.Errorf("%w: %s: no request succeeded (%d errors)", ErrLoad, spec.name, errs.Load())
	}
	return loadResult{
		RPS: float64(len(all)) / elapsed.Seconds(), P50: pctMS(all, 50), P99: pctMS(all, 99),
		N: len(all), Errors: int(errs.Load()), Via: "built-in",
	}, nil
}

// pctMS is the p-th percentile of ds in milliseconds (nearest rank).
func pctMS(ds []time.Duration, p float64) float64 {
	if len(ds) == 0 {
		return math.NaN()
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := int(math.Ceil(p/100*float64(len(s)))) - 1
	i = max(0, min(i, len(s)-1))
	return float64(s[i].Microseconds()) / 1000
}

// runTool runs etcd's benchmark tool for spec, sized to last about d, and
// keeps its output in rawPath. It is killed if it runs 4d + 60 s.
func runTool(ctx context.Context, bin string, spec loadSpec, d time.Duration, rawPath string) (loadResult, error) {
	total := spec.total
	if total == 0 {
		total = max(100, int(spec.toolRate*d.Seconds()))
	}
	var hosts []string
	for _, ep := range spec.eps {
		hosts = append(hosts, strings.TrimPrefix(ep, "http://"))
	}
	args := []string{
		"--endpoints", strings.Join(hosts, ","),
		"--clients", strconv.Itoa(spec.clients), "--conns", strconv.Itoa(spec.conns),
		"--dial-timeout", "5s", "--precise",
	}
	args = append(args, spec.toolArgs...)
	args = append(args, "--total", strconv.Itoa(total))
	tctx, cancel := context.WithTimeout(ctx, 4*d+time.Minute)
	defer cancel()
	cmd := exec.CommandContext(tctx, bin, args...)
	cmd.Env = serverEnv()
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	cmd.WaitDelay = 5 * time.Second
	f, err := os.Create(rawPath)
	if err != nil {
		return loadResult{}, err
	}
	defer f.Close()
	fmt.Fprintf(f, "$ benchmark %s\n", strings.Join(args, " "))
	cmd.Stdout, cmd.Stderr = f, f
	runErr := cmd.Run()
	if ctx.Err() != nil {
		return loadResult{}, ctx.Err()
	}
	if tctx.Err() != nil {
		return loadResult{}, fmt.Errorf("%w: %s: benchmark tool still running after %v; see %s", ErrLoad, spec.name, 4*d+time.Minute, rawPath)
	}
	if runErr != nil {
		return loadResult{}, fmt.Errorf("%w: %s: benchmark tool: %v; see %s", ErrLoad, spec.name, runErr, rawPath)
	}
	res, err := parseToolOutput(rawPath)
	if err != nil {
		return loadResult{}, fmt.Errorf("%w: %s: %v", ErrLoad, spec.name, err)
	}
	res.N = total
	return res, nil
}

var (
	reRPS = regexp.MustCompile(`Requests/sec:\s+([0-9.]+)`)
	rePct = regexp.MustCompile(`^\s+([0-9.]+)% in ([0-9.]+) secs`)
	reErr = regexp.MustCompile(`^\s+\[(\d+)\]\s`)
)

// parseToolOutput reads the first summary the benchmark tool printed
// (txn-mixed prints one for reads, then one for writes; we sum their
// rates and keep the worse percentiles).
func parseToolOutput(path string) (loadResult, error) {
	f, err := os.Open(path)
	if err != nil {
		return loadResult{}, err
	}
	defer f.Close()
	res := loadResult{Via: "benchmark tool", P50: math.NaN(), P99: math.NaN()}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	found := false
	for sc.Scan() {
		line := sc.Text()
		if m := reRPS.FindStringSubmatch(line); m != nil {
			v, _ := strconv.ParseFloat(m[1], 64)
			res.RPS += v
			found = true
		}
		if m := rePct.FindStringSubmatch(line); m != nil {
			v, _ := strconv.ParseFloat(m[2], 64)
			switch m[1] {
			case "50":
				res.P50 = maxNaN(res.P50, v*1000)
			case "99":
				res.P99 = maxNaN(res.P99, v*1000)
			}
		}
		if m := reErr.FindStringSubmatch(line); m != nil {
			n, _ := strconv.Atoi(m[1])
			res.Errors += n
		}
	}
	if err := sc.Err(); err != nil {
		return res, err
	}
	if !found {
		return res, fmt.Errorf("no \"Requests/sec\" in the benchmark tool's output %s", path)
	}
	return res, nil
}

func maxNaN(a, b float64) float64 {
	if math.IsNaN(a) {
		return b
	}
	return math.Max(a, b)
}

// value is an n-byte value (issue 6 uses 256 B, and 1 KiB for the load).
func value(n int) string { return strings.Repeat("v", n) }

// Built-in equivalents of the benchmark tool's workloads (used by -smoke,
// which builds nothing from the module proxy) and the CAS loop.

func opPut(keySpace int, val string) func(context.Context, *clientv3.Client, int) error {
	return func(ctx context.Context, cli *clientv3.Client, i int) error {
		_, err := cli.Put(ctx, fmt.Sprintf("k%07d", rand.IntN(keySpace)), val)
		return err
	}
}

func opRange(key string, serializable bool) func(context.Context, *clientv3.Client, int) error {
	return func(ctx context.Context, cli *clientv3.Client, i int) error {
		var opts []clientv3.OpOption
		if serializable {
			opts = append(opts, clientv3.WithSerializable())
		}
		_, err := cli.Get(ctx, key, opts...)
		return err
	}
}

// opTxnMixed mirrors the tool's txn-mixed: half single-op read txns (a
// prefix range limited to one key), half single-put txns.
func opTxnMixed(keySpace int, val string) func(context.Context, *clientv3.Client, int) error {
	return func(ctx context.Context, cli *clientv3.Client, i int) error {
		op := clientv3.OpPut(fmt.Sprintf("t%05d", rand.IntN(keySpace)), val)
		if rand.IntN(2) == 0 {
			op = clientv3.OpGet("", clientv3.WithPrefix(), clientv3.WithLimit(1))
		}
		_, err := cli.Txn(ctx).Then(op).Commit()
		return err
	}
}

// opCAS is one compare-and-swap: read a key, then write it only if its
// mod revision is unchanged. A lost race is a completed CAS, not an error.
func opCAS(keySpace int, val string) func(context.Context, *clientv3.Client, int) error {
	return func(ctx context.Context, cli *clientv3.Client, i int) error {
		key := fmt.Sprintf("cas%04d", rand.IntN(keySpace))
		g, err := cli.Get(ctx, key)
		if err != nil {
			return err
		}
		var rev int64
		if len(g.Kvs) > 0 {
			rev = g.Kvs[0].ModRevision
		}
		_, err = cli.Txn(ctx).If(clientv3.Compare(clientv3.ModRevision(key), "=", rev)).
			Then(clientv3.OpPut(key, val)).Commit()
		return err
	}
}
