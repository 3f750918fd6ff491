package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cadrekv/cadre/tests/framework"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// TestClientURLChangeByRestart: a member restarted with a new
// --advertise-client-urls publishes it, and `member list` shows it.
func TestClientURLChangeByRestart(t *testing.T) {
	c := framework.NewCluster(t, 3, framework.Options{})
	m := c.Members[1]
	old := m.Endpoint()
	m.Stop(t)
	u := membURL(framework.FreePorts(t, 1)[0])
	m.SetArgs(t, framework.WithFlag(framework.WithFlag(m.Args(), "listen-client-urls", u), "advertise-client-urls", u))
	m.Restart(t)
	if m.Endpoint() != u {
		t.Fatalf("endpoint after SetArgs %s, want %s", m.Endpoint(), u)
	}
	eventually(t, 15*time.Second, "member list showing "+u, func() error {
		var ml memberListJSON
		if err := json.Unmarshal([]byte(membCtl(t, c, "member", "list", "-w", "json")), &ml); err != nil {
			return err
		}
		for _, jm := range ml.Members {
			if jm.Name == m.Name {
				if !slices.Equal(jm.ClientURLs, []string{u}) {
					return errors.New("client URLs " + strings.Join(jm.ClientURLs, ",") + ", want " + u + " (was " + old + ")")
				}
				return nil
			}
		}
		return errors.New("no member " + m.Name)
	})
	membPutOn(t, m, "/client-url/k", "v", 10*time.Second)
	membSerializableGet(t, c.Members[0], "/client-url/k", "v", 10*time.Second)
}

// membRefused runs a membership command that must be refused with want.
// "unhealthy cluster" right after a (re)start is retried for at most 20 s
// unless it is the expected answer.
func membRefused(t *testing.T, c *framework.Cluster, eps []string, want string, args ...string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for attempt := 0; ; attempt++ {
		stderr := membCtlFails(t, c, eps, args...)
		if strings.Contains(stderr, want) {
			return
		}
		if !strings.Contains(stderr, "unhealthy cluster") || attempt >= 40 || time.Now().After(deadline) {
			t.Fatalf("etcdctl %q: stderr %q, want %q", args, stderr, want)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// TestStrictReconfigChecks provokes every refusal of etcd's strict
// reconfiguration checks and the member-API validation, and checks that
// each refusal changed nothing.
func TestStrictReconfigChecks(t *testing.T) {
	c := framework.NewCluster(t, 3, framework.Options{})
	eps := c.Endpoints()
	cli := c.Client(t)
	ids := c.MemberIDs(t)
	hex := func(id uint64) string { return strconv.FormatUint(id, 16) }
	before := membList(t, cli)

	membRefused(t, c, eps, "etcdserver: can only promote a learner member", "member", "promote", hex(ids["infra2"]))
	membUnchanged(t, cli, "promoting a voter", before)

	membRefused(t, c, eps, "etcdserver: Peer URLs already exists", "member", "add", "dup", "--peer-urls="+c.Members[1].PeerURL())
	membUnchanged(t, cli, "adding a used peer URL", before)
	membRefused(t, c, eps, "etcdserver: Peer URLs already exists", "member", "update", hex(ids["infra1"]), "--peer-urls="+c.Members[2].PeerURL())
	membUnchanged(t, cli, "updating to a used peer URL", before)

	unknown := uint64(0x1234abcd)
	for _, id := range ids {
		if id == unknown {
			unknown++
		}
	}
	membRefused(t, c, eps, "etcdserver: member not found", "member", "remove", hex(unknown))
	membRefused(t, c, eps, "etcdserver: member not found", "member", "update", hex(unknown), "--peer-urls=http://127.0.0.1:1")
	membUnchanged(t, cli, "removing an unknown ID", before)

	// etcdctl and client/v3 check URLs before sending; the server's own check
	// is reached through the raw gRPC API.
	if stderr := membCtlFails(t, c, eps, "member", "add", "bad", "--peer-urls=not-a-url"); !strings.Contains(stderr, "not-a-url") {
		t.Errorf("etcdctl member add with a bad URL: %q", stderr)
	}
	raw := pb.NewClusterClient(cli.ActiveConnection())
	for _, urls := range [][]string{{"not-a-url"}, {"ftp://127.0.0.1:2380"}, {"http://127.0.0.1:2380/path"}, {"http://127.0.0.1"}} {
		_, err := raw.MemberAdd(ctxFor(t, opTimeout), &pb.MemberAddRequest{PeerURLs: urls})
		membWantErr(t, "raw MemberAdd "+strings.Join(urls, ","), err, "etcdserver: given member URLs are invalid")
		if framework.IsCadre() { // etcd v3.7.3 accepts it and then panics applying it (rafthttp UpdatePeer)
			_, err = raw.MemberUpdate(ctxFor(t, opTimeout), &pb.MemberUpdateRequest{ID: ids["infra1"], PeerURLs: urls})
			membWantErr(t, "raw MemberUpdate "+strings.Join(urls, ","), err, "etcdserver: given member URLs are invalid")
		}
	}
	membUnchanged(t, cli, "invalid URLs", before)

	// One voter down: no add, and no removal of a live voter, keeps quorum
	// safe enough; the leader refuses both as an unhealthy cluster.
	lead := c.Leader(t)
	down := c.Members[(lead+1)%3]
	live := c.Members[(lead+2)%3]
	down.Kill(t)
	time.Sleep(time.Second) // let the others notice the broken connections
	liveEps := c.RunningEndpoints()
	spare := membURL(framework.FreePorts(t, 1)[0])
	membRefused(t, c, liveEps, "etcdserver: unhealthy cluster", "member", "add", "x", "--peer-urls="+spare)
	membRefused(t, c, liveEps, "etcdserver: unhealthy cluster", "member", "add", "x", "--learner", "--peer-urls="+spare)
	membRefused(t, c, liveEps, "etcdserver: unhealthy cluster", "member", "remove", hex(ids[live.Name]))
	membUnchanged(t, framework.NewClient(t, liveEps...), "changes while "+down.Name+" is down", before)
	down.Restart(t)

	// Two unstarted voters: 5 voters, 3 started; a sixth needs 4 started.
	ports := framework.FreePorts(t, 3)
	membAdd(t, c, "x1", "--peer-urls="+membURL(ports[0]))
	membAdd(t, c, "x2", "--peer-urls="+membURL(ports[1]))
	five := membList(t, cli)
	if len(five) != 5 {
		t.Fatalf("after two adds: %d members, want 5: %q", len(five), five)
	}
	membRefused(t, c, eps, "etcdserver: re-configuration failed due to not enough started members",
		"member", "add", "x3", "--peer-urls="+membURL(ports[2]))
	membUnchanged(t, cli, "adding a voter without enough started members", five)
}

// TestAddToOneMemberCluster: adding a voter to a one-member cluster is
// allowed; writes stall until the new member runs, then resume. A further
// voter is refused meanwhile (1 started of 3).
func TestAddToOneMemberCluster(t *testing.T) {
	c := framework.NewCluster(t, 1, framework.Options{})
	cli := c.Client(t)
	if _, err := cli.Put(ctxFor(t, opTimeout), "/one/before", "b"); err != nil {
		t.Fatal(err)
	}
	ports := framework.FreePorts(t, 3)
	peer2, client2 := membURL(ports[0]), membURL(ports[1])
	added := membAdd(t, c, "infra2", "--peer-urls="+peer2)
	if got, want := strings.Split(added.Env["ETCD_INITIAL_CLUSTER"], ","), []string{"infra1=" + c.Members[0].PeerURL(), "infra2=" + peer2}; !sameSet(got, want) {
		t.Fatalf("ETCD_INITIAL_CLUSTER %q, want %q", got, want)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	_, err := cli.Put(ctx, "/one/stalled", "s")
	cancel()
	if err == nil {
		t.Fatal("a put succeeded with 1 of 2 voters running; want it to stall")
	}
	t.Logf("put while the new member is not running: %v", err)

	// Only the linearizable list needs quorum; the local one answers now.
	serial := func() []string {
		resp, err := cli.MemberList(ctxFor(t, opTimeout), clientv3.WithSerializable())
		if err != nil {
			t.Fatalf("serializable member list: %v", err)
		}
		var l []string
		for _, m := range resp.Members {
			l = append(l, strconv.FormatUint(m.ID, 16)+" "+m.Name+" "+strings.Join(m.PeerURLs, ","))
		}
		slices.Sort(l)
		return l
	}
	two := serial()
	if len(two) != 2 {
		t.Fatalf("members after the add: %q, want 2", two)
	}
	membRefused(t, c, c.Endpoints(), "etcdserver: re-configuration failed due to not enough started members",
		"member", "add", "infra3", "--peer-urls="+membURL(ports[2]))
	if got := serial(); !slices.Equal(got, two) {
		t.Fatalf("membership changed after a refused add: %q, was %q", got, two)
	}

	m2 := c.AddMemberProcess(t, "infra2", membJoinFlags(filepath.Join(c.Dir(), "infra2.data"), peer2, client2), added.EnvList())
	c.Append(m2)
	m2.WaitHealthy(t, 30*time.Second)
	membPutOn(t, c.Members[0], "/one/after", "a", 20*time.Second)
	membSerializableGet(t, m2, "/one/before", "b", 20*time.Second)
	membSerializableGet(t, m2, "/one/after", "a", 20*time.Second)
	eventually(t, 15*time.Second, "two started members", func() error {
		l := membList(t, cli)
		if len(l) != 2 || !strings.Contains(strings.Join(l, "\n"), `name="infra2"`) {
			return errors.New("members: " + strings.Join(l, "; "))
		}
		return nil
	})
}

// TestJoinRefused: a process that is not a rightful new member of a
// running cluster is refused, and the cluster's leader and term stay.
func TestJoinRefused(t *testing.T) {
	c := framework.NewCluster(t, 3, framework.Options{})
	cli := c.Client(t)
	before := membList(t, cli)
	leader, term := c.LeaderStatus(t)
	var initial []string
	for _, m := range c.Members {
		initial = append(initial, m.Name+"="+m.PeerURL())
	}
	for _, tc := range []struct {
		name, state, token string
		etcdExits          bool // etcd refuses too; otherwise it just fails to join
	}{
		{"never-added", "existing", "cadre-e2e", true},
		{"state-new", "new", "cadre-e2e", false},
		{"wrong-token", "new", "other-token", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ports := framework.FreePorts(t, 2)
			dataDir := filepath.Join(c.Dir(), "infra9-"+tc.name+".data")
			args := []string{
				"--name", "infra9", "--data-dir", dataDir,
				"--listen-client-urls", membURL(ports[0]), "--advertise-client-urls", membURL(ports[0]),
				"--listen-peer-urls", membURL(ports[1]), "--initial-advertise-peer-urls", membURL(ports[1]),
				"--initial-cluster", strings.Join(append(slices.Clone(initial), "infra9="+membURL(ports[1])), ","),
				"--initial-cluster-state", tc.state, "--initial-cluster-token", tc.token,
			}
			timeout := 20 * time.Second
			if !framework.IsCadre() && !tc.etcdExits {
				timeout = 8 * time.Second // etcd keeps trying; stop it after a while
			}
			start := time.Now()
			res := framework.RunProcessIn(t, c.Dir(), timeout, framework.Server(t), args, nil, nil)
			t.Logf("exit %d after %v (timed out %v); last line: %s", res.Code, time.Since(start).Round(time.Millisecond),
				res.TimedOut, membLastLine(res.Stderr))
			if framework.IsCadre() || tc.etcdExits {
				if res.TimedOut || res.Code == 0 {
					t.Fatalf("want a refusal within %v, got %s", timeout, res)
				}
			}
			if framework.IsCadre() {
				out := res.Stdout + res.Stderr
				if !strings.Contains(out, "member add") && !strings.Contains(out, "cluster ID") {
					t.Errorf("refusal names neither `member add` nor the cluster ID:\n%s", out)
				}
			}
			l, tm := c.LeaderStatus(t)
			if l != leader || tm != term {
				t.Errorf("cluster disturbed: leader %x term %d -> leader %x term %d", leader, term, l, tm)
			}
			membUnchanged(t, cli, tc.name, before)
		})
	}
}
