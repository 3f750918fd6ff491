package framework

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// Options tune NewCluster. The zero value is a plain cluster.
type Options struct {
	// ExtraFlags are appended to every member's flags, e.g.
	// []string{"--snapshot-count", "100"}.
	ExtraFlags []string
	// Env is added to every member's environment (KEY=VALUE).
	Env []string
	// Token is --initial-cluster-token; default "cadre-e2e".
	Token string
	// StartTimeout bounds the wait for all members to be healthy;
	// default DefaultHealthTimeout.
	StartTimeout time.Duration
	// TLS runs both ports over https with client certificates required
	// (see NewClusterTLS); the harness's clients, health checks and
	// etcdctl use its client certificate.
	TLS *ClusterTLS
}

// Cluster is n server processes on 127.0.0.1 forming one cluster.
type Cluster struct {
	Members []*Member
	t       testing.TB
	tls     *ClusterTLS
}

const (
	startAttempts  = 3
	dialTimeout    = 5 * time.Second
	leaderTimeout  = 20 * time.Second
	etcdctlTimeout = 30 * time.Second
)

// NewCluster starts n members named infra1..infran and waits until every
// one answers /health with 200. Ports are picked free on 127.0.0.1; if a
// member could not bind its port (another process took it meanwhile) the
// whole cluster is started again on new ports, at most startAttempts times.
// On test failure the tail of every member's log is printed; the processes
// are killed when the test ends.
func NewCluster(t testing.TB, n int, opts Options) *Cluster {
	t.Helper()
	if n < 1 {
		t.Fatalf("NewCluster: n = %d, want >= 1", n)
	}
	bin := Server(t)
	if opts.Token == "" {
		opts.Token = "cadre-e2e"
	}
	if opts.StartTimeout == 0 {
		opts.StartTimeout = DefaultHealthTimeout
	}
	base := t.TempDir()
	c := &Cluster{t: t, tls: opts.TLS}
	t.Cleanup(func() {
		if t.Failed() {
			for _, m := range c.Members {
				t.Log(m.LogTail(40))
			}
		}
		c.Close()
	})
	var lastErr error
	for attempt := 1; attempt <= startAttempts; attempt++ {
		dir := filepath.Join(base, "attempt"+strconv.Itoa(attempt))
		members, err := newMembers(bin, dir, n, opts)
		if err != nil {
			t.Fatal(err)
		}
		c.Members = members
		err = c.startAll(opts.StartTimeout)
		if err == nil {
			return c
		}
		lastErr = err
		bindConflict := false
		for _, m := range members {
			if m.LogContains("address already in use") {
				bindConflict = true
			}
		}
		if !bindConflict {
			break
		}
		t.Logf("port conflict on attempt %d, retrying on new ports: %v", attempt, err)
		c.Close()
	}
	t.Fatalf("cluster of %d did not start: %v", n, lastErr)
	return nil
}

func newMembers(bin, dir string, n int, opts Options) ([]*Member, error) {
	ports, err := freePorts(2 * n)
	if err != nil {
		return nil, err
	}
	members := make([]*Member, n)
	initial := make([]string, n)
	scheme := "http"
	if opts.TLS != nil {
		scheme = "https"
	}
	for i := range n {
		name := "infra" + strconv.Itoa(i+1)
		members[i] = &Member{
			Name:      name,
			Index:     i,
			bin:       bin,
			env:       opts.Env,
			tls:       opts.TLS.clientConfig(),
			clientURL: scheme + "://127.0.0.1:" + strconv.Itoa(ports[2*i]),
			peerURL:   scheme + "://127.0.0.1:" + strconv.Itoa(ports[2*i+1]),
			dataDir:   filepath.Join(dir, name+".data"),
			logPath:   filepath.Join(dir, name+".log"),
		}
		initial[i] = name + "=" + members[i].peerURL
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	for _, m := range members {
		m.args = append([]string{
			"--name", m.Name,
			"--data-dir", m.dataDir,
			"--listen-client-urls", m.clientURL,
			"--advertise-client-urls", m.clientURL,
			"--listen-peer-urls", m.peerURL,
			"--initial-advertise-peer-urls", m.peerURL,
			"--initial-cluster", strings.Join(initial, ","),
			"--initial-cluster-state", "new",
			"--initial-cluster-token", opts.Token,
		}, append(opts.TLS.ServerFlags(), opts.ExtraFlags...)...)
	}
	return members, nil
}

// startAll starts every member, then waits for all to be healthy: members
// of a new cluster only become healthy once a quorum is up.
func (c *Cluster) startAll(timeout time.Duration) error {
	for _, m := range c.Members {
		if err := m.start(); err != nil {
			return err
		}
	}
	deadline := time.Now().Add(timeout)
	for _, m := range c.Members {
		if err := m.waitHealthy(time.Until(deadline)); err != nil {
			return err
		}
	}
	return nil
}

// RestartAll starts every stopped member, then waits for all to be healthy
// (needed after a whole-cluster crash: none is healthy until a quorum runs).
func (c *Cluster) RestartAll(t testing.TB) {
	t.Helper()
	for _, m := range c.Members {
		if !m.Running() {
			m.Start(t)
		}
	}
	deadline := time.Now().Add(DefaultHealthTimeout)
	for _, m := range c.Members {
		m.WaitHealthy(t, time.Until(deadline))
	}
}

// Close kills every member (bounded). It is registered as a cleanup by
// NewCluster and safe to call more than once.
func (c *Cluster) Close() {
	for _, m := range c.Members {
		_ = m.signal(syscall.SIGKILL)
	}
	for _, m := range c.Members {
		m.Wait(killTimeout)
	}
}

// Endpoints are the client URLs of all members, running or not.
func (c *Cluster) Endpoints() []string {
	eps := make([]string, len(c.Members))
	for i, m := range c.Members {
		eps[i] = m.Endpoint()
	}
	return eps
}

// RunningEndpoints are the client URLs of the members whose process runs.
func (c *Cluster) RunningEndpoints() []string {
	var eps []string
	for _, m := range c.Members {
		if m.Running() {
			eps = append(eps, m.Endpoint())
		}
	}
	return eps
}

// Client is a client/v3 client balanced over all members; it is closed when
// the test ends.
func (c *Cluster) Client(t testing.TB) *clientv3.Client {
	t.Helper()
	return NewClientTLS(t, c.tls.clientConfig(), c.Endpoints()...)
}

// ClientAt is a client for the given endpoints with the cluster's TLS.
func (c *Cluster) ClientAt(t testing.TB, endpoints ...string) *clientv3.Client {
	t.Helper()
	return NewClientTLS(t, c.tls.clientConfig(), endpoints...)
}

// NewClient is a client/v3 client for the given endpoints, closed at the
// end of the test. It logs nothing: failures surface as returned errors.
func NewClient(t testing.TB, endpoints ...string) *clientv3.Client {
	t.Helper()
	return NewClientTLS(t, nil, endpoints...)
}

// NewClientTLS is NewClient over TLS (nil: plain text).
func NewClientTLS(t testing.TB, tlsCfg *tls.Config, endpoints ...string) *clientv3.Client {
	t.Helper()
	cli, err := clientv3.New(clientv3.Config{
		Endpoints:   endpoints,
		DialTimeout: dialTimeout,
		TLS:         tlsCfg,
		Logger:      zap.NewNop(),
	})
	if err != nil {
		t.Fatalf("client for %v: %v", endpoints, err)
	}
	t.Cleanup(func() { _ = cli.Close() })
	return cli
}

// Leader returns the index of the leader, once every running member reports
// the same leader and that leader is one of them. It waits at most
// leaderTimeout and fails the test after that.
func (c *Cluster) Leader(t testing.TB) int {
	t.Helper()
	idx, err := c.leader(leaderTimeout)
	if err != nil {
		t.Fatal(err)
	}
	return idx
}

func (c *Cluster) leader(timeout time.Duration) (int, error) {
	cli, err := clientv3.New(clientv3.Config{Endpoints: c.Endpoints(), DialTimeout: dialTimeout, TLS: c.tls.clientConfig(), Logger: zap.NewNop()})
	if err != nil {
		return -1, err
	}
	defer cli.Close()
	deadline := time.Now().Add(timeout)
	var last error
	for time.Now().Before(deadline) {
		idx, err := c.leaderOnce(cli)
		if err == nil {
			return idx, nil
		}
		last = err
		time.Sleep(200 * time.Millisecond)
	}
	return -1, fmt.Errorf("no agreed leader among running members within %v: %v", timeout, last)
}

func (c *Cluster) leaderOnce(cli *clientv3.Client) (int, error) {
	ids := map[uint64]int{}
	var leader uint64
	for _, m := range c.Members {
		if !m.Running() {
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		st, err := cli.Status(ctx, m.Endpoint())
		cancel()
		if err != nil {
			return -1, fmt.Errorf("status of %s: %w", m.Name, err)
		}
		ids[st.Header.MemberId] = m.Index
		switch {
		case st.Leader == 0:
			return -1, fmt.Errorf("%s has no leader", m.Name)
		case leader != 0 && st.Leader != leader:
			return -1, fmt.Errorf("members disagree on the leader: %x vs %x", leader, st.Leader)
		}
		leader = st.Leader
	}
	if leader == 0 {
		return -1, errors.New("no running member")
	}
	idx, ok := ids[leader]
	if !ok {
		return -1, fmt.Errorf("leader %x is not a running member", leader)
	}
	return idx, nil
}

// Etcdctl runs the real etcdctl against all members' endpoints.
func (c *Cluster) Etcdctl(t testing.TB, args ...string) Result {
	t.Helper()
	return c.EtcdctlAt(t, c.Endpoints(), "", args...)
}

// EtcdctlStdin runs etcdctl with stdin (e.g. for `txn`).
func (c *Cluster) EtcdctlStdin(t testing.TB, stdin string, args ...string) Result {
	t.Helper()
	return c.EtcdctlAt(t, c.Endpoints(), stdin, args...)
}

// EtcdctlAt runs etcdctl against the given endpoints, bounded by
// etcdctlTimeout.
func (c *Cluster) EtcdctlAt(t testing.TB, endpoints []string, stdin string, args ...string) Result {
	t.Helper()
	bin := Etcdctl(t)
	full := append([]string{"--endpoints", strings.Join(endpoints, ","), "--dial-timeout", "5s", "--command-timeout", "15s"}, c.tls.EtcdctlFlags()...)
	full = append(full, args...)
	return RunProcessIn(t, "", etcdctlTimeout, bin, full, nil, strings.NewReader(stdin))
}
