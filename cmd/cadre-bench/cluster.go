package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// Bounds of every wait on a member process.
const (
	healthTimeout = 30 * time.Second
	killWait      = 10 * time.Second
	stopWait      = 15 * time.Second
	dialTimeout   = 5 * time.Second
	opTimeout     = 10 * time.Second
)

// ErrCluster marks a cluster that did not start or lost its leader.
var ErrCluster = errors.New("cluster")

// procs is the set of server processes this run started; killAll ends
// every one still alive, on success, failure and Ctrl-C alike.
type procs struct {
	mu   sync.Mutex
	live map[*member]struct{}
}

func (p *procs) add(m *member) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.live == nil {
		p.live = map[*member]struct{}{}
	}
	p.live[m] = struct{}{}
}

func (p *procs) remove(m *member) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.live, m)
}

func (p *procs) killAll() {
	p.mu.Lock()
	ms := make([]*member, 0, len(p.live))
	for m := range p.live {
		ms = append(ms, m)
	}
	p.mu.Unlock()
	for _, m := range ms {
		_ = m.kill()
	}
}

// member is one server process (etcd or Cadre: both take etcd's flags).
type member struct {
	name    string
	bin     string
	args    []string
	client  string // client URL
	peer    string // peer URL
	dataDir string
	logPath string
	reg     *procs

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
}

func (m *member) start() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.cmd != nil && !closed(m.done) {
		return fmt.Errorf("member %s: start while running", m.name)
	}
	f, err := os.OpenFile(m.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	fmt.Fprintf(f, "==== cadre-bench: %s %s\n", m.bin, strings.Join(m.args, " "))
	cmd := exec.Command(m.bin, m.args...)
	cmd.Env = serverEnv()
	cmd.Stdout, cmd.Stderr = f, f
	// Own process group (a terminal's Ctrl-C reaches only us, and we kill
	// the servers ourselves); the kernel kills them if we die unexpectedly.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		_ = f.Close()
		return fmt.Errorf("member %s: starting %s: %w", m.name, m.bin, err)
	}
	done := make(chan struct{})
	m.cmd, m.done = cmd, done
	m.reg.add(m)
	go func() {
		_ = cmd.Wait()
		_ = f.Close()
		m.reg.remove(m)
		close(done)
	}()
	return nil
}

func closed(ch chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

func (m *member) running() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.cmd != nil && !closed(m.done)
}

func (m *member) pid() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.cmd == nil || closed(m.done) {
		return 0
	}
	return m.cmd.Process.Pid
}

func (m *member) signal(sig syscall.Signal) (chan struct{}, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.cmd == nil || closed(m.done) {
		return nil, nil
	}
	err := m.cmd.Process.Signal(sig)
	if errors.Is(err, os.ErrProcessDone) {
		err = nil
	}
	return m.done, err
}

// kill sends SIGKILL and waits (bounded) for the process to be reaped.
func (m *member) kill() error {
	done, err := m.signal(syscall.SIGKILL)
	if err != nil || done == nil {
		return err
	}
	select {
	case <-done:
		return nil
	case <-time.After(killWait):
		return fmt.Errorf("member %s: still running %v after SIGKILL", m.name, killWait)
	}
}

// stop sends SIGTERM, then SIGKILL if the process outlives stopWait.
func (m *member) stop() error {
	done, err := m.signal(syscall.SIGTERM)
	if err != nil || done == nil {
		return err
	}
	select {
	case <-done:
		return nil
	case <-time.After(stopWait):
		return m.kill()
	}
}

func (m *member) waitHealthy(ctx context.Context, timeout time.Duration) error {
	hc := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(timeout)
	last := "no answer"
	for time.Now().Before(deadline) {
		if !m.running() {
			return fmt.Errorf("%w: member %s exited before becoming healthy; see %s", ErrCluster, m.name, m.logPath)
		}
		resp, err := hc.Get(m.client + "/health")
		if err == nil {
			_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			last = resp.Status
		} else {
			last = err.Error()
		}
		if err := sleepCtx(ctx, 100*time.Millisecond); err != nil {
			return err
		}
	}
	return fmt.Errorf("%w: member %s not healthy within %v (last: %s); see %s", ErrCluster, m.name, timeout, last, m.logPath)
}

// rssMB is the process's resident set (VmRSS) in MiB, 0 if not running.
func (m *member) rssMB() float64 { return m.procStatusMB("VmRSS:") }

// peakRSSMB is the largest resident set the process has had (VmHWM) in
// MiB, 0 if not running.
func (m *member) peakRSSMB() float64 { return m.procStatusMB("VmHWM:") }

// procStatusMB reads one kB field of /proc/<pid>/status, in MiB.
func (m *member) procStatusMB(field string) float64 {
	pid := m.pid()
	if pid == 0 {
		return 0
	}
	f, err := os.Open(filepath.Join("/proc", strconv.Itoa(pid), "status"))
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), field); ok {
			kb, _ := strconv.ParseFloat(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 64)
			return kb / 1024
		}
	}
	return 0
}

// metric sums the samples of one Prometheus counter from /metrics.
func (m *member) metric(name string) (float64, error) {
	hc := &http.Client{Timeout: 3 * time.Second}
	resp, err := hc.Get(m.client + "/metrics")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	var sum float64
	found := false
	sc := bufio.NewScanner(io.LimitReader(resp.Body, 16<<20))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, name) {
			continue
		}
		rest := line[len(name):]
		if rest == "" || (rest[0] != ' ' && rest[0] != '{') {
			continue
		}
		f := strings.Fields(line)
		v, err := strconv.ParseFloat(f[len(f)-1], 64)
		if err == nil {
			sum += v
			found = true
		}
	}
	if !found {
		return 0, fmt.Errorf("metric %s not exported by %s", name, m.client)
	}
	return sum, sc.Err()
}

// cluster is a set of members of one server kind.
type cluster struct {
	kind    string // "etcd" or "cadre"
	bin     string
	dir     string
	token   string
	quota   int64 // --quota-backend-bytes
	members []*member
	reg     *procs
}

// Backend quotas: one the regular workloads cannot hit, and twice that
// for the scale rows (1,000,000 keys of 1 KiB is ~1 GiB plus history).
const (
	regularQuota = 4 << 30
	scaleQuota   = 8 << 30
)

// commonFlags are passed identically to etcd and Cadre: the defaults of
// etcd v3.7 written out, so both run with the same timing and snapshots.
func commonFlags(quota int64) []string {
	return []string{
		"--heartbeat-interval", "100",
		"--election-timeout", "1000",
		"--snapshot-count", "10000",
		"--quota-backend-bytes", strconv.FormatInt(quota, 10),
		"--log-level", "warn",
	}
}

func newCluster(kind, bin, dir string, n int, quota int64, reg *procs) (*cluster, error) {
	c := &cluster{kind: kind, bin: bin, dir: dir, token: "bench-" + kind, quota: quota, reg: reg}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	for i := range n {
		m, err := c.newMember(fmt.Sprintf("m%d", i+1))
		if err != nil {
			return nil, err
		}
		c.members = append(c.members, m)
	}
	initial := c.initialCluster(nil)
	for _, m := range c.members {
		m.args = c.flags(m, initial, "new")
	}
	return c, nil
}

func (c *cluster) newMember(name string) (*member, error) {
	ports, err := freePorts(2)
	if err != nil {
		return nil, err
	}
	return &member{
		name:    name,
		bin:     c.bin,
		client:  "http://127.0.0.1:" + strconv.Itoa(ports[0]),
		peer:    "http://127.0.0.1:" + strconv.Itoa(ports[1]),
		dataDir: filepath.Join(c.dir, name+".data"),
		logPath: filepath.Join(c.dir, name+".log"),
		reg:     c.reg,
	}, nil
}

func (c *cluster) initialCluster(extra *member) string {
	var parts []string
	for _, m := range c.members {
		parts = append(parts, m.name+"="+m.peer)
	}
	if extra != nil {
		parts = append(parts, extra.name+"="+extra.peer)
	}
	return strings.Join(parts, ",")
}

func (c *cluster) flags(m *member, initial, state string) []string {
	return append([]string{
		"--name", m.name,
		"--data-dir", m.dataDir,
		"--listen-client-urls", m.client,
		"--advertise-client-urls", m.client,
		"--listen-peer-urls", m.peer,
		"--initial-advertise-peer-urls", m.peer,
		"--initial-cluster", initial,
		"--initial-cluster-state", state,
		"--initial-cluster-token", c.token,
	}, commonFlags(c.quota)...)
}

func (c *cluster) start(ctx context.Context) error {
	for _, m := range c.members {
		if err := m.start(); err != nil {
			return err
		}
	}
	deadline := time.Now().Add(healthTimeout)
	for _, m := range c.members {
		if err := m.waitHealthy(ctx, time.Until(deadline)); err != nil {
			return err
		}
	}
	return nil
}

// close stops every member (SIGTERM, then SIGKILL).
func (c *cluster) close() {
	var wg sync.WaitGroup
	for _, m := range c.members {
		wg.Add(1)
		go func() { defer wg.Done(); _ = m.stop() }()
	}
	wg.Wait()
}

func (c *cluster) running() []*member {
	var out []*member
	for _, m := range c.members {
		if m.running() {
			out = append(out, m)
		}
	}
	return out
}

func endpoints(ms []*member) []string {
	eps := make([]string, len(ms))
	for i, m := range ms {
		eps[i] = m.client
	}
	return eps
}

func newClient(eps []string) (*clientv3.Client, error) {
	return clientv3.New(clientv3.Config{
		Endpoints:   eps,
		DialTimeout: dialTimeout,
		Logger:      zap.NewNop(),
	})
}

// leader returns the running member that is the raft leader and its ID,
// asking every running member (bounded by timeout).
func (c *cluster) leader(ctx context.Context, timeout time.Duration) (*member, uint64, error) {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if m, id, ok := c.leaderOnce(ctx); ok {
			return m, id, nil
		}
		if err := sleepCtx(ctx, 100*time.Millisecond); err != nil {
			return nil, 0, err
		}
	}
	return nil, 0, fmt.Errorf("%w: %s has no leader after %v", ErrCluster, c.kind, timeout)
}

func (c *cluster) leaderOnce(ctx context.Context) (*member, uint64, bool) {
	for _, m := range c.running() {
		cli, err := newClient([]string{m.client})
		if err != nil {
			continue
		}
		sctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		st, err := cli.Status(sctx, m.client)
		cancel()
		if err != nil || st.Leader == 0 {
			_ = cli.Close()
			continue
		}
		mctx, mcancel := context.WithTimeout(ctx, 2*time.Second)
		ml, err := cli.MemberList(mctx)
		mcancel()
		_ = cli.Close()
		if err != nil {
			continue
		}
		for _, pm := range ml.Members {
			if pm.ID != st.Leader {
				continue
			}
			for _, cand := range c.members {
				for _, u := range pm.PeerURLs {
					if u == cand.peer && cand.running() {
						return cand, pm.ID, true
					}
				}
			}
		}
	}
	return nil, 0, false
}

func freePorts(n int) ([]int, error) {
	var lns []net.Listener
	defer func() {
		for _, ln := range lns {
			_ = ln.Close()
		}
	}()
	ports := make([]int, 0, n)
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("picking a free port on 127.0.0.1: %w", err)
		}
		lns = append(lns, ln)
		ports = append(ports, ln.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// serverEnv is our environment without ETCD_*/CADRE_* variables, so the
// caller's shell cannot give one server a setting the other lacks.
func serverEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "ETCD_") || strings.HasPrefix(kv, "CADRE_") || strings.HasPrefix(kv, "ETCDCTL_") {
			continue
		}
		env = append(env, kv)
	}
	return env
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
