package e2e

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/cadrekv/cadre/tests/framework"
)

// joinBudget bounds a join from start to promotion (the leader promotes
// once the learner has connected and caught up; its autopilot looks every
// second).
const joinBudget = 60 * time.Second

// joinFlags are the flags of a member started with --join: its own URLs
// and data dir, the cluster's client URLs, nothing about the members.
func joinFlags(c *framework.Cluster, name, peer, client string, extra ...string) []string {
	return append([]string{
		"--name", name,
		"--data-dir", filepath.Join(c.Dir(), name+".data"),
		"--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
		"--listen-client-urls", client, "--advertise-client-urls", client,
		"--join", strings.Join(c.Endpoints(), ","),
	}, extra...)
}

// waitVoter waits until the member named name is a started voting member.
func waitVoter(t *testing.T, cli *clientv3.Client, name string, d time.Duration) {
	t.Helper()
	eventually(t, d, name+" becoming a voting member", func() error {
		resp, err := cli.MemberList(ctxFor(t, opTimeout))
		if err != nil {
			return err
		}
		for _, m := range resp.Members {
			if m.Name == name && !m.IsLearner {
				return nil
			}
		}
		return fmt.Errorf("not yet: %v", resp.Members)
	})
}

// TestJoin: `cadre --join` refuses what cannot work before it proposes
// anything, with the reason and the fix (mixed with --initial-cluster; a
// peer URL the leader cannot reach; another cluster's token), leaving the
// membership as it was. Given only the cluster's client URLs, a new member
// adds itself as a learner, is promoted once caught up, and serves; its
// restart is an ordinary restart that adds nothing.
func TestJoin(t *testing.T) {
	framework.SkipUnlessCadre(t)
	c := framework.NewCluster(t, 3, framework.Options{})
	cli := framework.NewClient(t, c.Endpoints()...)
	ctx := ctxFor(t, 3*time.Minute)
	for i := range 50 {
		if _, err := cli.Put(ctx, fmt.Sprintf("/join/%02d", i), "v"); err != nil {
			t.Fatal(err)
		}
	}
	before := membList(t, cli)

	// Refused by the flags alone.
	ports := framework.FreePorts(t, 4)
	peer, client := membURL(ports[0]), membURL(ports[1])
	res := framework.RunProcessIn(t, c.Dir(), 20*time.Second, framework.Server(t),
		joinFlags(c, "bad0", peer, client, "--initial-cluster", "bad0="+peer), nil, nil)
	if res.Code != 2 || !strings.Contains(res.Stderr, "--join and --initial-cluster are both set") {
		t.Fatalf("--join with --initial-cluster: want exit 2 naming both flags, got %s", res)
	}

	// A peer URL nobody listens on: the leader's probe fails.
	lost := membURL(ports[2])
	res = framework.RunProcessIn(t, c.Dir(), 90*time.Second, framework.Server(t),
		joinFlags(c, "bad1", peer, client, "--initial-advertise-peer-urls", lost), nil, nil)
	if res.Code != 1 || !strings.Contains(res.Stderr, "cannot reach it at its peer URL "+lost) || !strings.Contains(res.Stderr, "--listen-peer-urls") {
		t.Fatalf("--join advertising an unreachable peer URL: want exit 1 with the reason and the fix, got %s", res)
	}
	membUnchanged(t, cli, "a join refused for an unreachable peer URL", before)

	// Another cluster's token.
	res = framework.RunProcessIn(t, c.Dir(), 90*time.Second, framework.Server(t),
		joinFlags(c, "bad2", peer, client, "--initial-cluster-token", "some-other-cluster"), nil, nil)
	if res.Code != 1 || !strings.Contains(res.Stderr, `--initial-cluster-token "some-other-cluster" does not match`) {
		t.Fatalf("--join with another cluster's token: want exit 1 naming the token, got %s", res)
	}
	membUnchanged(t, cli, "a join refused for its token", before)

	// The join itself.
	m := c.AddMemberProcess(t, "joined4", joinFlags(c, "joined4", peer, client), nil)
	waitVoter(t, cli, "joined4", joinBudget)
	m.WaitHealthy(t, 30*time.Second)
	if !m.LogContains("join pre-flight passed") || !m.LogContains("added as a learner") {
		t.Errorf("the joiner's log does not show its steps:\n%s", m.LogTail(30))
	}
	got, err := framework.NewClient(t, m.Endpoint()).Get(ctx, "/join/", clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil || got.Count != 50 {
		t.Fatalf("linearizable read on the joined member: %v (err %v)", got, err)
	}
	membPutOn(t, m, "/join/by-joined4", "v", 10*time.Second)
	c.Append(m)

	// A restart of the joined member adds nothing.
	after := membList(t, cli)
	if len(after) != len(before)+1 {
		t.Fatalf("after the join: %q, want one member more than %q", after, before)
	}
	m.Stop(t)
	m.Start(t)
	m.WaitHealthy(t, 30*time.Second)
	if !m.LogContains("--join has nothing to do") {
		t.Errorf("restart of a joined member did not say it skipped the join:\n%s", m.LogTail(20))
	}
	membUnchanged(t, cli, "restarting the joined member", after)
}

// TestJoinTLS: on a cluster with TLS on both ports and client certificates
// required, `cadre --join` checks peer TLS before it proposes anything: an
// http peer URL is refused naming the scheme the cluster uses, a peer
// certificate from another CA is refused because the leader's probe
// cannot complete the TLS handshake, and a member with the cluster's
// certificates joins and is promoted.
func TestJoinTLS(t *testing.T) {
	framework.SkipUnlessCadre(t)
	ct := framework.NewClusterTLS(t)
	c := framework.NewCluster(t, 3, framework.Options{TLS: ct})
	cli := c.Client(t)
	before := membList(t, cli)
	https := func(port int) string { return fmt.Sprintf("https://127.0.0.1:%d", port) }
	clientSide := []string{"--cert-file", ct.ServerCert, "--key-file", ct.ServerKey, "--trusted-ca-file", ct.CA.CertFile, "--client-cert-auth"}

	ports := framework.FreePorts(t, 6)
	res := framework.RunProcessIn(t, c.Dir(), 90*time.Second, framework.Server(t),
		joinFlags(c, "plain", membURL(ports[0]), https(ports[1]), clientSide...), nil, nil)
	if res.Code != 1 || !strings.Contains(res.Stderr, "uses http, but the cluster's members use https peer URLs") {
		t.Fatalf("--join with an http peer URL into an https cluster: want exit 1 naming the schemes, got %s", res)
	}

	other := framework.NewCA(t, "another-ca")
	oc, okey := other.Issue(t, "stranger", framework.CertOptions{CN: "stranger"})
	flags := append(append([]string(nil), clientSide...), "--peer-cert-file", oc, "--peer-key-file", okey, "--peer-trusted-ca-file", other.CertFile, "--peer-client-cert-auth")
	res = framework.RunProcessIn(t, c.Dir(), 90*time.Second, framework.Server(t),
		joinFlags(c, "stranger", https(ports[2]), https(ports[3]), flags...), nil, nil)
	if res.Code != 1 || !strings.Contains(res.Stderr, "cannot reach it at its peer URL") || !strings.Contains(res.Stderr, "certificate") {
		t.Fatalf("--join with a peer certificate of another CA: want exit 1 with the TLS error, got %s", res)
	}
	membUnchanged(t, cli, "joins refused for their peer TLS", before)

	m := c.AddMemberProcess(t, "secure4", joinFlags(c, "secure4", https(ports[4]), https(ports[5]), ct.ServerFlags()...), nil)
	waitVoter(t, cli, "secure4", joinBudget)
	m.WaitHealthy(t, 30*time.Second)
	c.Append(m)
}
