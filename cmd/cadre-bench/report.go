package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// metric is one row of the table. Better says which direction wins;
// target is the goal for the row (issue 16's where it set one, issue 6's
// otherwise), checked on the ratio (or, with absolute, on Cadre's own
// figure).
type metric struct {
	Key, Name, Unit string
	HigherBetter    bool
	Target          string
	check           func(ratio, cadre float64) bool
}

// rows lists every figure in table order; workload names which -only
// entry produces it.
func rows() []struct {
	workload string
	metric
} {
	type r = struct {
		workload string
		metric
	}
	le := func(x float64) func(float64, float64) bool { return func(q, _ float64) bool { return q <= x } }
	ge := func(x float64) func(float64, float64) bool { return func(q, _ float64) bool { return q >= x } }
	return []r{
		{"rss", metric{"rss.idle", "RSS idle (max of members)", "MiB", false, "<= 1.0x", le(1)}},
		{"put1", metric{"put1.rps", "put, 1 client 1 conn (leader)", "req/s", true, "", nil}},
		{"put1", metric{"put1.p50", "put, 1 client: p50", "ms", false, "<= 0.5x", le(0.5)}},
		{"put1", metric{"put1.p99", "put, 1 client: p99", "ms", false, "", nil}},
		{"put1", metric{"put1.cpu", "put, 1 client: server CPU per 10k puts", "CPU-s", false, "", nil}},
		{"put100", metric{"put100.rps", "put, 100 clients 10 conns", "req/s", true, ">= 1.5x", ge(1.5)}},
		{"put100", metric{"put100.p99", "put, 100 clients: p99", "ms", false, "<= 1.0x", le(1)}},
		{"put100", metric{"put100.fsyncs", "put, 100 clients: WAL fsyncs per put (leader)", "count", false, "", nil}},
		{"put100", metric{"put100.cpu", "put, 100 clients: server CPU per 10k puts", "CPU-s", false, "<= 0.6x", le(0.6)}},
		{"range", metric{"range.l", "range 1 key, 100 clients, linearizable", "req/s", true, ">= 1.5x", ge(1.5)}},
		{"range", metric{"range.s", "range 1 key, 100 clients, serializable", "req/s", true, ">= 1.3x", ge(1.3)}},
		{"range", metric{"range.l.cpu", "range linearizable: server CPU per 10k reads", "CPU-s", false, "", nil}},
		{"range", metric{"range.s.cpu", "range serializable: server CPU per 10k reads", "CPU-s", false, "", nil}},
		{"txn", metric{"txn.rps", "txn-mixed, 50 clients (1:1 read:put)", "txn/s", true, "", nil}},
		{"cas", metric{"cas.rps", "CAS get+txn, 50 clients", "CAS/s", true, "", nil}},
		{"watch", metric{"watch.p50", "watch event latency p50", "ms", false, "", nil}},
		{"watch", metric{"watch.p99", "watch event latency p99", "ms", false, "<= 0.7x", le(0.7)}},
		{"learner", metric{"rss.load", "RSS after load (max of members)", "MiB", false, "<= 0.8x", le(0.8)}},
		{"learner", metric{"rss.load.peak", "RSS peak so far, VmHWM (max of members)", "MiB", false, "", nil}},
		{"learner", metric{"learner.s", "learner catch-up (add -> promote)", "s", false, "<= 1.0x", le(1)}},
		{"gap", metric{"gap.kill", "write gap, leader kill -9", "ms", false, "<= 1.0x", le(1)}},
		{"gap", metric{"gap.remove", "write gap, leader member remove", "ms", false, "<= 100 ms", func(_, c float64) bool { return c <= 100 }}},
		{"leases", metric{"lease.revoke.small", "lease revoke (10 keys), small keyspace: median", "ms", false, "", nil}},
		{"leases", metric{"lease.revoke.large", "lease revoke (10 keys), large keyspace: median", "ms", false, "", nil}},
		{"leases", metric{"lease.expiry.p99", "put p99 while 100 leases expire over the large keyspace", "ms", false, "<= 2.0x", le(2)}},
		{"leases", metric{"lease.expiry.gone", "100 expiring leases: grant -> all their keys gone", "s", false, "", nil}},
		{"leases", metric{"lease.expiry.errors", "puts failed while 100 leases expire", "count", false, "", nil}},
		{"scale", metric{"scale.load", "scale: load 1 KiB keys, 100 clients", "keys/s", true, "", nil}},
		{"scale", metric{"scale.rss", "scale: RSS after load (max of members)", "MiB", false, "", nil}},
		{"scale", metric{"scale.rss.peak", "scale: RSS peak during load, VmHWM (max of members)", "MiB", false, "", nil}},
		{"scale", metric{"scale.range10k", "scale: range of 10,000 keys, linearizable: median", "ms", false, "", nil}},
		{"scale", metric{"scale.compact", "scale: compaction of half the history", "s", false, "", nil}},
		{"scale", metric{"scale.compact.p99", "scale: put p99 during the compaction", "ms", false, "", nil}},
		{"scale", metric{"scale.compact.max", "scale: put max during the compaction", "ms", false, "", nil}},
		{"scale", metric{"scale.defrag", "scale: defragmentation of one member", "s", false, "", nil}},
		{"scale", metric{"scale.restart", "scale: kill -9 all, restart -> linearizable read", "s", false, "", nil}},
		{"scale", metric{"scale.learner", "scale: learner catch-up (add -> promote)", "s", false, "", nil}},
	}
}

// Floors a latency row is divided by (floor.go): "put" is the floor of a
// 1-client put (every write through consensus: puts, lease revokes),
// "grpc" the gRPC unary round trip p50 (every other latency). p99 and max
// rows are divided by the same p50 floor.
const (
	floorPut  = "put"
	floorGRPC = "grpc"
)

func floorOf(key string) string {
	return map[string]string{
		"put1.p50": floorPut, "put1.p99": floorPut, "put100.p99": floorPut,
		"watch.p50": floorGRPC, "watch.p99": floorGRPC,
		"lease.revoke.small": floorPut, "lease.revoke.large": floorPut, "lease.expiry.p99": floorPut,
		"scale.range10k": floorGRPC, "scale.compact.p99": floorPut, "scale.compact.max": floorPut,
	}[key]
}

// floorMS is the floor of that kind measured in this run (0 if unknown).
func (m machine) floorMS(kind string) float64 {
	switch kind {
	case floorPut:
		return m.PutFloorMS
	case floorGRPC:
		return m.GRPCP50ms
	}
	return 0
}

// floorRatio is one latency row against the machine's floor.
type floorRatio struct {
	Floor   string             `json:"floor"` // "put" or "grpc"
	FloorMS float64            `json:"floor_ms"`
	Ratio   map[string]float64 `json:"ratio"` // server -> value / floor
}

// floorRatios divides every latency value by its floor.
func floorRatios(m machine, r *results) map[string]floorRatio {
	out := map[string]floorRatio{}
	for _, row := range rows() {
		kind := floorOf(row.Key)
		f := m.floorMS(kind)
		if kind == "" || f <= 0 {
			continue
		}
		fr := floorRatio{Floor: kind, FloorMS: f, Ratio: map[string]float64{}}
		for _, srv := range []string{"etcd", "cadre"} {
			if v, ok := r.Values[srv][row.Key]; ok {
				fr.Ratio[srv] = v / f
			}
		}
		if len(fr.Ratio) > 0 {
			out[row.Key] = fr
		}
	}
	return out
}

// results holds each server's figures by metric key (absent = not run or
// failed) and free-form notes (errors, details) for the raw output.
type results struct {
	Values map[string]map[string]float64 `json:"values"`
	Notes  map[string][]string           `json:"notes"`
}

func newResults() *results {
	return &results{Values: map[string]map[string]float64{"etcd": {}, "cadre": {}}, Notes: map[string][]string{}}
}

func (r *results) set(server, key string, v float64) {
	if !math.IsNaN(v) && !math.IsInf(v, 0) {
		r.Values[server][key] = v
	}
}

func (r *results) note(server, format string, args ...any) {
	r.Notes[server] = append(r.Notes[server], fmt.Sprintf(format, args...))
}

// table renders the comparison. A ratio is Cadre/etcd; whether a high or
// low ratio is good is in the "better" column. Latency rows also carry
// each server's figure divided by the machine's floor (see the legend).
func (r *results) table(selected map[string]bool, m machine, scaleKeys int) string {
	var b strings.Builder
	const rowFmt = "%-56s %-6s %10s %10s %10s %10s %11s %-7s %s\n"
	fmt.Fprintf(&b, rowFmt, "workload", "unit", "etcd", "Cadre", "Cadre/etcd", "etcd/floor", "Cadre/floor", "better", "target")
	fmt.Fprintf(&b, "%s\n", strings.Repeat("-", 146))
	floors := floorRatios(m, r)
	for _, row := range rows() {
		if !selected[row.workload] {
			continue
		}
		e, eok := r.Values["etcd"][row.Key]
		c, cok := r.Values["cadre"][row.Key]
		ratio, verdict := "-", row.Target
		q := math.NaN()
		if eok && cok && e != 0 {
			q = c / e
			ratio = fmt.Sprintf("%.2fx", q)
		}
		if row.check != nil && cok && (eok || row.Key == "gap.remove") {
			if row.check(q, c) {
				verdict += " met"
			} else {
				verdict += " MISSED"
			}
		}
		better := "lower"
		if row.HigherBetter {
			better = "higher"
		}
		ef, cf := floorCells(floors, row.Key)
		fmt.Fprintf(&b, rowFmt, row.Name, row.Unit, num(e, eok), num(c, cok), ratio, ef, cf, better, verdict)
	}
	b.WriteString(legend(m, selected, scaleKeys))
	return b.String()
}

// floorCells are a row's etcd/floor and Cadre/floor cells: blank for a
// row that has no floor, "-" for a missing value.
func floorCells(floors map[string]floorRatio, key string) (string, string) {
	if floorOf(key) == "" {
		return "", ""
	}
	cell := func(srv string) string {
		if v, ok := floors[key].Ratio[srv]; ok && v < 100 {
			return fmt.Sprintf("%.1fx", v)
		} else if ok {
			return fmt.Sprintf("%.0fx", v)
		}
		return "-"
	}
	return cell("etcd"), cell("cadre")
}

// legend says what the floor and CPU columns divide by.
func legend(m machine, selected map[string]bool, scaleKeys int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "\nx/floor: the figure divided by the floor measured in this run: put latencies (and lease revokes, also one write\n"+
		"through consensus) by the floor of a 1-client put (%.3f ms); every other latency by the gRPC unary round trip p50\n"+
		"(%.3f ms). p99 and max rows are divided by the same p50 floors.\n", m.PutFloorMS, m.GRPCP50ms)
	if selected["put1"] || selected["put100"] || selected["range"] {
		fmt.Fprintf(&b, "CPU-s: user+system CPU seconds of all members (/proc/<pid>/stat, %.0f ticks/s) per %d requests of the workload.\n", clockTicks(), cpuPer)
	}
	if selected["scale"] {
		fmt.Fprintf(&b, "scale rows: %d keys of 1 KiB loaded into a fresh 3-member cluster of each kind (see docs/PERFORMANCE.md).\n", scaleKeys)
	}
	return b.String()
}

func num(v float64, ok bool) string {
	switch {
	case !ok:
		return "-"
	case v >= 100:
		return strconv.FormatFloat(v, 'f', 0, 64)
	case v >= 10:
		return strconv.FormatFloat(v, 'f', 1, 64)
	default:
		return strconv.FormatFloat(v, 'f', 2, 64)
	}
}

// machine describes where the figures were taken.
type machine struct {
	Cores       int     `json:"cores"`
	CPU         string  `json:"cpu"`
	MemTotalMiB int     `json:"mem_total_mib"`
	Kernel      string  `json:"kernel"`
	GoVersion   string  `json:"go_version"`
	DataDir     string  `json:"data_dir"`
	FsyncP50ms  float64 `json:"fdatasync_256b_p50_ms"`
	FsyncP99ms  float64 `json:"fdatasync_256b_p99_ms"`
	FsyncIters  int     `json:"fdatasync_iterations"`
	// The floor (floor.go): loopback and gRPC round trips, and the
	// lowest put latency they allow a 3-member cluster.
	LoopbackP50ms float64 `json:"loopback_rtt_p50_ms"`
	LoopbackP99ms float64 `json:"loopback_rtt_p99_ms"`
	GRPCP50ms     float64 `json:"grpc_unary_rtt_p50_ms"`
	GRPCP99ms     float64 `json:"grpc_unary_rtt_p99_ms"`
	PutFloorMS    float64 `json:"put_1_client_floor_ms"`
	Started       string  `json:"started"`
}

func describeMachine(dataDir string) machine {
	m := machine{Cores: runtime.NumCPU(), GoVersion: goVersion(), DataDir: dataDir, Started: time.Now().UTC().Format(time.RFC3339)}
	m.CPU = procField("/proc/cpuinfo", "model name")
	if v := procField("/proc/meminfo", "MemTotal"); v != "" {
		kb, _ := strconv.Atoi(strings.Fields(v)[0])
		m.MemTotalMiB = kb / 1024
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	return m
}

func goVersion() string {
	out, err := exec.Command("go", "env", "GOVERSION").Output()
	if err != nil {
		return runtime.Version()
	}
	return strings.TrimSpace(string(out))
}

func procField(path, field string) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if ok && strings.TrimSpace(k) == field {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// fsyncLatency appends 256 B and fdatasyncs it, iters times, in a file in
// dir (the data disk): the floor under every acknowledged write.
func fsyncLatency(dir string, iters int) (p50, p99 float64, err error) {
	f, err := os.CreateTemp(dir, "fsync-probe-")
	if err != nil {
		return 0, 0, err
	}
	defer os.Remove(f.Name())
	defer f.Close()
	buf := []byte(value(256))
	lat := make([]time.Duration, 0, iters)
	for range iters {
		t0 := time.Now()
		if _, err := f.Write(buf); err != nil {
			return 0, 0, err
		}
		if err := syscall.Fdatasync(int(f.Fd())); err != nil {
			return 0, 0, err
		}
		lat = append(lat, time.Since(t0))
	}
	return pctMS(lat, 50), pctMS(lat, 99), nil
}

func (m machine) String() string {
	return fmt.Sprintf("machine: %d cores (%s), %d MiB RAM, Linux %s, %s\ndata disk %s: write+fdatasync 256 B p50 %.3f ms, p99 %.3f ms (%d iterations)"+
		"\nloopback TCP round trip p50 %.3f ms, p99 %.3f ms; gRPC unary round trip (empty handler) p50 %.3f ms, p99 %.3f ms"+
		"\nfloor of put, 1 client, 3 members (gRPC + peer round trip + one fdatasync): %.3f ms",
		m.Cores, m.CPU, m.MemTotalMiB, m.Kernel, m.GoVersion, m.DataDir, m.FsyncP50ms, m.FsyncP99ms, m.FsyncIters,
		m.LoopbackP50ms, m.LoopbackP99ms, m.GRPCP50ms, m.GRPCP99ms, m.PutFloorMS)
}

// writeSummary writes summary.json and table.txt into out.
func writeSummary(out string, m machine, r *results, table string, params map[string]any) error {
	b, err := json.MarshalIndent(map[string]any{"machine": m, "params": params, "results": r,
		"floor_ratios": floorRatios(m, r), "cpu_per_requests": cpuPer, "clock_ticks_per_s": clockTicks()}, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(out, "summary.json"), append(b, '\n'), 0o644); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(out, "table.txt"), []byte(m.String()+"\n\n"+table), 0o644)
}

// copyFile keeps a member's log among the raw outputs.
func copyFile(dst, src string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	o, err := os.Create(dst)
	if err != nil {
		return err
	}
	if _, err := io.Copy(o, in); err != nil {
		_ = o.Close()
		return err
	}
	return o.Close()
}
