package framework

import (
	"bufio"
	"cmp"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// StaticMember places one member of NewClusterAt on fixed URLs.
type StaticMember struct {
	Name      string
	ClientURL string // e.g. http://127.0.0.1:12379
	PeerURL   string // e.g. http://127.0.0.1:12380
	// ListenPeerURL, if set, is where the member listens for peers while
	// PeerURL is what it advertises (e.g. a proxy in front of it).
	ListenPeerURL string
}

// NewClusterAt starts a new cluster on fixed URLs (for scenarios that must
// run on documented ports) and waits until every member is healthy. Unlike
// NewCluster it cannot retry on other ports: callers check the ports with
// PortFree first and skip when one is busy.
func NewClusterAt(t testing.TB, specs []StaticMember, opts Options) *Cluster {
	t.Helper()
	c, err := TryClusterAt(t, specs, opts)
	if err != nil {
		t.Fatalf("cluster on fixed ports did not start: %v", err)
	}
	return c
}

// TryClusterAt is NewClusterAt returning the error instead of failing the
// test (the members started are stopped), so a caller that picked the
// ports itself can pick others and try again: another process may take a
// port between FreePorts and the member's bind.
func TryClusterAt(t testing.TB, specs []StaticMember, opts Options) (*Cluster, error) {
	t.Helper()
	if len(specs) == 0 {
		t.Fatal("NewClusterAt: no members")
	}
	bin := Server(t)
	if opts.Token == "" {
		opts.Token = "cadre-e2e"
	}
	if opts.StartTimeout == 0 {
		opts.StartTimeout = DefaultHealthTimeout
	}
	dir := t.TempDir()
	initial := make([]string, len(specs))
	for i, s := range specs {
		initial[i] = s.Name + "=" + s.PeerURL
	}
	c := &Cluster{t: t}
	for i, s := range specs {
		m := &Member{
			Name: s.Name, Index: i, bin: bin, env: opts.Env,
			clientURL: s.ClientURL, peerURL: s.PeerURL,
			dataDir: filepath.Join(dir, s.Name+".data"),
			logPath: filepath.Join(dir, s.Name+".log"),
		}
		m.args = append([]string{
			"--name", m.Name,
			"--data-dir", m.dataDir,
			"--listen-client-urls", m.clientURL,
			"--advertise-client-urls", m.clientURL,
			"--listen-peer-urls", cmp.Or(s.ListenPeerURL, m.peerURL),
			"--initial-advertise-peer-urls", m.peerURL,
			"--initial-cluster", strings.Join(initial, ","),
			"--initial-cluster-state", "new",
			"--initial-cluster-token", opts.Token,
		}, opts.ExtraFlags...)
		c.Members = append(c.Members, m)
	}
	t.Cleanup(func() {
		if t.Failed() {
			for _, m := range c.Members {
				t.Log(m.LogTail(40))
			}
		}
		c.Close()
	})
	if err := c.startAll(opts.StartTimeout); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// Dir is the directory holding the members' data dirs and logs; extra
// members' data dirs belong there too.
func (c *Cluster) Dir() string {
	if len(c.Members) == 0 {
		return c.t.TempDir()
	}
	return filepath.Dir(c.Members[0].logPath)
}

// AddMemberProcess starts one more server process named name with exactly
// flags and env (KEY=VALUE, added to the environment, so the ETCD_* lines
// printed by `member add` can be passed as they are). It does not wait for
// health and does not join c.Members (see Append). Its client URL, peer URL
// and data dir are read from the flags, else from ETCD_* in env; a relative
// data dir lands in Dir(). It is killed when the test ends.
func (c *Cluster) AddMemberProcess(t testing.TB, name string, flags, env []string) *Member {
	t.Helper()
	m := &Member{
		Name:    name,
		Index:   -1,
		bin:     Server(t),
		args:    append([]string(nil), flags...),
		env:     append([]string(nil), env...),
		logPath: filepath.Join(c.Dir(), name+".log"),
		workDir: c.Dir(),
		tls:     c.tls.clientConfig(),
	}
	m.deriveURLs()
	if m.dataDir != "" && !filepath.IsAbs(m.dataDir) {
		m.dataDir = filepath.Join(c.Dir(), m.dataDir)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Log(m.LogTail(40))
		}
		_ = m.kill()
	})
	m.Start(t)
	return m
}

// Append makes m a member of c: Endpoints, Leader and Close include it.
func (c *Cluster) Append(m *Member) {
	m.Index = len(c.Members)
	c.Members = append(c.Members, m)
}

// Drop takes the member named name out of c (killing it if it still runs),
// e.g. after `member remove`; the others are re-indexed. It returns the
// dropped member, or nil if there is none of that name.
func (c *Cluster) Drop(name string) *Member {
	i := slices.IndexFunc(c.Members, func(m *Member) bool { return m.Name == name })
	if i < 0 {
		return nil
	}
	m := c.Members[i]
	_ = m.kill()
	c.Members = slices.Delete(c.Members, i, i+1)
	for j, o := range c.Members {
		o.Index = j
	}
	m.Index = -1
	return m
}

// SetArgs replaces the member's flags for its next start (e.g. a new peer or
// client URL) and re-reads its URLs and data dir from them. The member must
// not be running.
func (m *Member) SetArgs(t testing.TB, args []string) {
	t.Helper()
	if m.Running() {
		t.Fatalf("member %s: SetArgs while running", m.Name)
	}
	m.mu.Lock()
	m.args = append([]string(nil), args...)
	m.mu.Unlock()
	m.deriveURLs()
}

// deriveURLs reads client URL, peer URL and data dir from the flags, then
// from ETCD_* variables in env, keeping the current values otherwise.
func (m *Member) deriveURLs() {
	m.mu.Lock()
	defer m.mu.Unlock()
	pick := func(flags ...string) string {
		for _, f := range flags {
			if v, ok := FlagValue(m.args, f); ok {
				return v
			}
		}
		for _, f := range flags {
			env := "ETCD_" + strings.ToUpper(strings.ReplaceAll(f, "-", "_")) + "="
			for _, kv := range m.env {
				if v, ok := strings.CutPrefix(kv, env); ok {
					return v
				}
			}
		}
		return ""
	}
	first := func(v string) string { return strings.Split(v, ",")[0] }
	if v := pick("advertise-client-urls", "listen-client-urls"); v != "" {
		m.clientURL = first(v)
	}
	if v := pick("initial-advertise-peer-urls", "listen-peer-urls"); v != "" {
		m.peerURL = first(v)
	}
	if v := pick("data-dir"); v != "" {
		m.dataDir = v
	}
}

// FlagValue returns the value of --name in args, written as "--name v" or
// "--name=v" (one or two dashes); the last occurrence wins.
func FlagValue(args []string, name string) (string, bool) {
	val, found := "", false
	for i := 0; i < len(args); i++ {
		a := strings.TrimLeft(args[i], "-")
		if len(a) == len(args[i]) {
			continue // not a flag
		}
		if a == name && i+1 < len(args) {
			val, found = args[i+1], true
			i++
		} else if v, ok := strings.CutPrefix(a, name+"="); ok {
			val, found = v, true
		}
	}
	return val, found
}

// WithFlag returns a copy of args with --name set to value: every existing
// occurrence is replaced, or the flag is appended.
func WithFlag(args []string, name, value string) []string {
	out := append([]string(nil), args...)
	set := false
	for i := 0; i < len(out); i++ {
		a := strings.TrimLeft(out[i], "-")
		if len(a) == len(out[i]) {
			continue
		}
		if a == name && i+1 < len(out) {
			out[i+1], set = value, true
			i++
		} else if strings.HasPrefix(a, name+"=") {
			out[i], set = "--"+name+"="+value, true
		}
	}
	if !set {
		out = append(out, "--"+name, value)
	}
	return out
}

// FreePorts returns n distinct free ports on 127.0.0.1.
func FreePorts(t testing.TB, n int) []int {
	t.Helper()
	p, err := freePorts(n)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// MemberAdded is what `etcdctl member add` printed.
type MemberAdded struct {
	ID, ClusterID uint64
	Learner       bool
	// Env holds the printed ETCD_* settings without quotes, e.g.
	// Env["ETCD_NAME"] = "infra4".
	Env map[string]string
}

// EnvList returns Env as KEY=VALUE pairs, sorted, for a process environment.
func (a MemberAdded) EnvList() []string {
	var out []string
	for k, v := range a.Env {
		out = append(out, k+"="+v)
	}
	slices.Sort(out)
	return out
}

var (
	addedLine = regexp.MustCompile(`^Member\s+([0-9a-f]+) added (as learner )?to cluster\s+([0-9a-f]+)$`)
	envLine   = regexp.MustCompile(`^(ETCD_[A-Z_]+)="(.*)"$`)
)

// ParseMemberAdd parses the output of `etcdctl member add` (simple format):
// the "Member <id> added [as learner ]to cluster <cid>" line and the
// ETCD_*="..." lines.
func ParseMemberAdd(out string) (MemberAdded, error) {
	res := MemberAdded{Env: map[string]string{}}
	seen := false
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		l := strings.TrimSpace(sc.Text())
		if m := addedLine.FindStringSubmatch(l); m != nil {
			id, err1 := strconv.ParseUint(m[1], 16, 64)
			cid, err2 := strconv.ParseUint(m[3], 16, 64)
			if err1 != nil || err2 != nil {
				return res, fmt.Errorf("bad IDs in %q", l)
			}
			res.ID, res.ClusterID, res.Learner, seen = id, cid, m[2] != "", true
		} else if m := envLine.FindStringSubmatch(l); m != nil {
			res.Env[m[1]] = m[2]
		}
	}
	if !seen {
		return res, fmt.Errorf("no \"Member <id> added to cluster <id>\" line in:\n%s", out)
	}
	return res, nil
}

// MemberIDs maps member names to IDs as MemberList (linearizable, through
// the running members) reports them. Unstarted members have no name and
// are left out.
func (c *Cluster) MemberIDs(t testing.TB) map[string]uint64 {
	t.Helper()
	cli := c.ClientAt(t, c.RunningEndpoints()...)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := cli.MemberList(ctx)
	if err != nil {
		t.Fatalf("member list: %v", err)
	}
	ids := map[string]uint64{}
	for _, m := range resp.Members {
		if m.Name != "" {
			ids[m.Name] = m.ID
		}
	}
	return ids
}

// LeaderStatus returns the leader's ID and raft term as the running members
// see them, once they all agree (waiting at most leaderTimeout).
func (c *Cluster) LeaderStatus(t testing.TB) (leader, term uint64) {
	t.Helper()
	idx := c.Leader(t)
	cli := c.ClientAt(t, c.Members[idx].Endpoint())
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	st, err := cli.Status(ctx, c.Members[idx].Endpoint())
	if err != nil {
		t.Fatalf("status of leader %s: %v", c.Members[idx].Name, err)
	}
	return st.Leader, st.RaftTerm
}

// LogSince returns the member's output after the first `from` bytes, e.g.
// only what its latest run wrote (take len(m.Log()) before starting it).
func (m *Member) LogSince(from int) string {
	l := m.Log()
	if from > len(l) {
		return ""
	}
	return l[from:]
}

// DirHasWAL reports whether dataDir holds a member/wal directory with at
// least one file.
func DirHasWAL(dataDir string) bool {
	ents, err := os.ReadDir(filepath.Join(dataDir, "member", "wal"))
	return err == nil && len(ents) > 0
}

// Interrupt sends SIGTERM without waiting (Stop waits and fails the test).
func (m *Member) Interrupt() error { return m.signal(syscall.SIGTERM) }

// MemberListClient returns the members as client/v3 sees them through
// endpoints: a helper for comparing the membership before and after.
func MemberListClient(ctx context.Context, cli *clientv3.Client) ([]string, error) {
	resp, err := cli.MemberList(ctx)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, m := range resp.Members {
		p, cl := slices.Clone(m.PeerURLs), slices.Clone(m.ClientURLs)
		slices.Sort(p)
		slices.Sort(cl)
		out = append(out, fmt.Sprintf("%016x name=%q peers=%v clients=%v learner=%v", m.ID, m.Name, p, cl, m.IsLearner))
	}
	slices.Sort(out)
	return out, nil
}
