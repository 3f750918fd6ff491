package e2e

import (
	"crypto/tls"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/cadrekv/cadre/tests/framework"
)

// TestTLSCluster: three members with TLS and client certificates on both
// ports serve the real etcdctl (--cacert/--cert/--key) and client/v3.
func TestTLSCluster(t *testing.T) {
	ct := framework.NewClusterTLS(t)
	c := framework.NewCluster(t, 3, framework.Options{TLS: ct})
	ctx := ctxFor(t, time.Minute)
	if !strings.HasPrefix(c.Members[0].Endpoint(), "https://") {
		t.Fatalf("endpoint %s is not https", c.Members[0].Endpoint())
	}
	if res := c.Etcdctl(t, "put", "/tls/a", "1"); res.Code != 0 || strings.TrimSpace(res.Stdout) != "OK" {
		t.Fatalf("etcdctl put over TLS: %s", res)
	}
	if res := c.Etcdctl(t, "get", "/tls/a", "--print-value-only"); res.Code != 0 || strings.TrimSpace(res.Stdout) != "1" {
		t.Fatalf("etcdctl get over TLS: %s", res)
	}
	// cadrectl takes etcdctl's TLS flags.
	if framework.IsCadre() {
		cadrectl := func(args ...string) framework.Result {
			return framework.RunProcessIn(t, "", 30*time.Second, framework.Cadrectl(t),
				append([]string{"--endpoints", strings.Join(c.Endpoints(), ","), "--dial-timeout", "3s", "--command-timeout", "5s"}, args...), nil, nil)
		}
		if res := cadrectl(append(ct.EtcdctlFlags(), "get", "/tls/a", "--print-value-only")...); res.Code != 0 || strings.TrimSpace(res.Stdout) != "1" {
			t.Fatalf("cadrectl get over TLS: %s", res)
		}
		if res := cadrectl(append(ct.EtcdctlFlags(), "member", "list", "-w", "table")...); res.Code != 0 || strings.Count(res.Stdout, "https://") < 6 {
			t.Fatalf("cadrectl member list over TLS: %s", res)
		}
		// Failures say what is wrong, where etcdctl says only "context
		// deadline exceeded".
		for _, tc := range []struct {
			args []string
			want string
		}{
			{[]string{"--cacert", ct.CA.CertFile}, "refused this client's certificate"},
			{[]string{"--cert", ct.ClientCert, "--key", ct.ClientKey}, "is not trusted"},
		} {
			res := cadrectl(append(tc.args, "--dial-timeout", "1s", "--command-timeout", "2s", "get", "/tls/a")...)
			if res.Code == 0 || !strings.Contains(res.Stderr, "hint: ") || !strings.Contains(res.Stderr, tc.want) {
				t.Errorf("cadrectl %v against a TLS cluster: exit %d, stderr %q; want a hint saying %q", tc.args, res.Code, res.Stderr, tc.want)
			}
		}
	}
	ml, err := c.Client(t).MemberList(ctx)
	if err != nil || len(ml.Members) != 3 {
		t.Fatalf("member list over TLS: %v (err %v)", ml, err)
	}
	for _, m := range ml.Members {
		if len(m.PeerURLs) != 1 || !strings.HasPrefix(m.PeerURLs[0], "https://") {
			t.Errorf("member %s peer URLs %v, want https", m.Name, m.PeerURLs)
		}
	}
}

// etcdEnvLines returns the ETCD_*="..." lines `etcdctl member add` prints,
// as KEY=VALUE environment entries.
func etcdEnvLines(out string) []string {
	var env []string
	for _, line := range strings.Split(out, "\n") {
		if k, v, ok := strings.Cut(strings.TrimSpace(line), "="); ok && strings.HasPrefix(k, "ETCD_") {
			env = append(env, k+"="+strings.Trim(v, `"`))
		}
	}
	return env
}

// addTLSMember runs `etcdctl member add` (as a learner if asked) and starts
// the new member with the printed ETCD_* lines plus its listen URLs and the
// cluster's certificates; it returns the process and its member ID (hex).
func addTLSMember(t *testing.T, c *framework.Cluster, ct *framework.ClusterTLS, name string, learner bool) (*framework.Member, string) {
	t.Helper()
	ports := framework.FreePorts(t, 2)
	peer, client := fmt.Sprintf("https://127.0.0.1:%d", ports[0]), fmt.Sprintf("https://127.0.0.1:%d", ports[1])
	args := []string{"member", "add", name, "--peer-urls=" + peer}
	if learner {
		args = append(args, "--learner")
	}
	res := etcdctlWhileUnhealthy(t, c, args...)
	if res.Code != 0 {
		t.Fatalf("etcdctl %v: %s", args, res)
	}
	id := regexp.MustCompile(`Member +([0-9a-f]+) added`).FindStringSubmatch(res.Stdout)
	if id == nil {
		t.Fatalf("no member ID in %q", res.Stdout)
	}
	flags := append([]string{"--data-dir", filepath.Join(c.Dir(), name+".data"),
		"--listen-peer-urls", peer, "--listen-client-urls", client, "--advertise-client-urls", client}, ct.ServerFlags()...)
	m := c.AddMemberProcess(t, name, flags, etcdEnvLines(res.Stdout))
	m.WaitHealthy(t, 30*time.Second)
	return m, id[1]
}

// TestTLSMembership: the runtime reconfiguration workflows over TLS on both
// ports, driven by the real etcdctl: add and join a voter, add a learner and
// promote it, remove a member (it stops with exit 3).
func TestTLSMembership(t *testing.T) {
	ct := framework.NewClusterTLS(t)
	var flags []string
	if framework.IsCadre() {
		// Frequent snapshots with a short tail, so the learner below is
		// caught up by a snapshot transfer over TLS.
		flags = []string{"--snapshot-count", "50", "--snapshot-catchup-entries", "10"}
	}
	c := framework.NewCluster(t, 3, framework.Options{TLS: ct, ExtraFlags: flags})
	ctx := ctxFor(t, 2*time.Minute)

	voter, voterID := addTLSMember(t, c, ct, "infra4", false)
	c.Append(voter)
	if res := c.EtcdctlAt(t, []string{voter.Endpoint()}, "", "put", "/tls/joined", "yes"); res.Code != 0 {
		t.Fatalf("write through the joined member: %s", res)
	}

	cli := c.Client(t)
	for i := range 200 {
		if _, err := cli.Put(ctx, fmt.Sprintf("/tls/bulk/%03d", i), "v"); err != nil {
			t.Fatal(err)
		}
	}
	learner, learnerID := addTLSMember(t, c, ct, "infra5", true)
	var res framework.Result
	for deadline := time.Now().Add(30 * time.Second); ; {
		res = c.Etcdctl(t, "member", "promote", learnerID)
		if res.Code == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	if res.Code != 0 || !strings.Contains(res.Stdout, "promoted") {
		t.Fatalf("etcdctl member promote over TLS: %s", res)
	}
	c.Append(learner)
	if framework.IsCadre() && !learner.LogContains("installed snapshot") {
		t.Error("the learner was not caught up by a snapshot over TLS")
	}
	// The promoted member serves the data written before it joined.
	g, err := c.ClientAt(t, learner.Endpoint()).Get(ctx, "/tls/joined")
	if err != nil || len(g.Kvs) != 1 {
		t.Fatalf("read from the promoted member: %v (err %v)", g, err)
	}

	// etcd (and Cadre's strict check) may call a just-promoted voter not
	// yet active.
	res = etcdctlWhileUnhealthy(t, c, "member", "remove", voterID)
	if res.Code != 0 || !strings.Contains(res.Stdout, "removed") {
		t.Fatalf("etcdctl member remove over TLS: %s\nstdout %q stderr %q", res, res.Stdout, res.Stderr)
	}
	// A removed member stops (etcd exits 0; Cadre exits 3 so supervisors
	// do not restart it).
	if code, exited := voter.Wait(30 * time.Second); !exited || (framework.IsCadre() && code != 3) {
		t.Fatalf("removed member: exited=%v code=%d, want it stopped (exit 3 on Cadre)", exited, code)
	}
	c.Drop("infra4")
	if res := c.Etcdctl(t, "member", "list"); res.Code != 0 || strings.Count(strings.TrimSpace(res.Stdout), "\n") != 3 {
		t.Fatalf("member list after the removal: %s", res)
	}
}

// etcdctlWhileUnhealthy runs a member command, retrying (for at most 20 s)
// while the strict reconfiguration check answers "unhealthy cluster": a
// member that just started or was just promoted is not yet counted active.
func etcdctlWhileUnhealthy(t *testing.T, c *framework.Cluster, args ...string) framework.Result {
	t.Helper()
	var res framework.Result
	for deadline := time.Now().Add(20 * time.Second); ; {
		res = c.Etcdctl(t, args...)
		if res.Code == 0 || time.Now().After(deadline) || !strings.Contains(res.Stderr, "unhealthy") {
			return res
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// TestAutoTLS: --auto-tls and --peer-auto-tls serve https with generated
// self-signed certificates kept in the data dir across restarts.
func TestAutoTLS(t *testing.T) {
	m := newDiscoveryMembers(t, "auto")[0]
	m.client = strings.Replace(m.client, "http://", "https://", 1)
	m.peer = strings.Replace(m.peer, "http://", "https://", 1)
	p := m.start(t, "--auto-tls", "--peer-auto-tls", "--initial-cluster", "auto="+m.peer)
	insecure := &tls.Config{InsecureSkipVerify: true} //nolint:gosec // self-signed by design
	var err error
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		if err = httpsGet(m.client, insecure); err == nil {
			break
		}
	}
	if err != nil {
		t.Fatalf("auto TLS member not serving https: %v\n%s", err, p.LogTail(10))
	}
	if _, err := os.Stat(filepath.Join(m.dataDir, "fixtures", "client", "cert.pem")); framework.IsCadre() && err != nil {
		t.Fatalf("no generated client certificate in the data dir: %v", err)
	}
	cli := framework.NewClientTLS(t, insecure, m.client)
	if _, err := cli.Put(ctxFor(t, 10*time.Second), "/auto", "tls"); err != nil {
		t.Fatalf("put over auto TLS: %v", err)
	}
}
