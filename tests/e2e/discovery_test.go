package e2e

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"golang.org/x/net/dns/dnsmessage"

	"github.com/cadrekv/cadre/tests/framework"
)

// discoveryMember is one member started with discovery flags.
type discoveryMember struct {
	name, client, peer, dataDir string
}

func newDiscoveryMembers(t *testing.T, names ...string) []discoveryMember {
	t.Helper()
	ports := framework.FreePorts(t, 2*len(names))
	dir := t.TempDir()
	out := make([]discoveryMember, len(names))
	for i, n := range names {
		out[i] = discoveryMember{name: n, client: membURL(ports[2*i]), peer: membURL(ports[2*i+1]),
			dataDir: filepath.Join(dir, n+".data")}
	}
	return out
}

func (m discoveryMember) args(extra ...string) []string {
	return append([]string{"--name", m.name, "--data-dir", m.dataDir,
		"--listen-client-urls", m.client, "--advertise-client-urls", m.client,
		"--listen-peer-urls", m.peer, "--initial-advertise-peer-urls", m.peer}, extra...)
}

func (m discoveryMember) start(t *testing.T, extra ...string) *framework.Member {
	return framework.StartServer(t, framework.ServerSpec{Name: m.name, ClientURL: m.client, DataDir: m.dataDir, Args: m.args(extra...)})
}

// checkFormed waits for every process to serve and checks they form one
// cluster of the expected names that takes a write.
func checkFormed(t *testing.T, ctx context.Context, procs []*framework.Member, names []string) {
	t.Helper()
	var eps []string
	for _, p := range procs {
		p.WaitHealthy(t, 30*time.Second)
		eps = append(eps, p.Endpoint())
	}
	cli := framework.NewClient(t, eps...)
	var got []string
	for deadline := time.Now().Add(10 * time.Second); ; {
		ml, err := cli.MemberList(ctx)
		if err != nil {
			t.Fatalf("member list: %v", err)
		}
		got = got[:0]
		for _, m := range ml.Members {
			got = append(got, m.Name)
		}
		sort.Strings(got)
		if strings.Join(got, ",") == strings.Join(names, ",") || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if strings.Join(got, ",") != strings.Join(names, ",") {
		t.Fatalf("members %v, want %v", got, names)
	}
	if _, err := cli.Put(ctx, "/discovered", "yes"); err != nil {
		t.Fatalf("write to the discovered cluster: %v", err)
	}
	for _, ep := range eps {
		g, err := framework.NewClient(t, ep).Get(ctx, "/discovered")
		if err != nil || len(g.Kvs) != 1 {
			t.Fatalf("read from %s: %v (err %v)", ep, g, err)
		}
	}
}

// TestDiscoveryV3: three members bootstrap through a discovery service (a
// Cadre cluster) using etcd's registry layout; a fourth with the same token
// is told the cluster is full and leaves nothing on disk.
func TestDiscoveryV3(t *testing.T) {
	framework.SkipUnlessCadre(t)
	ctx := ctxFor(t, 2*time.Minute)
	disc := framework.NewCluster(t, 1, framework.Options{Token: "discovery-service"})
	const token = "e2e-discovery-token"
	if _, err := disc.Client(t).Put(ctx, "/_etcd/registry/"+token+"/_config/size", "3"); err != nil {
		t.Fatal(err)
	}
	flags := []string{"--discovery-token", token, "--discovery-endpoints", disc.Members[0].Endpoint()}
	ms := newDiscoveryMembers(t, "d1", "d2", "d3", "d4")
	var procs []*framework.Member
	for _, m := range ms[:3] {
		procs = append(procs, m.start(t, flags...))
	}
	checkFormed(t, ctx, procs, []string{"d1", "d2", "d3"})

	// The registrations are etcd's: one key per member under members/.
	regs, err := disc.Client(t).Get(ctx, "/_etcd/registry/"+token+"/members/", clientv3.WithPrefix())
	if err != nil || len(regs.Kvs) != 3 {
		t.Fatalf("registrations: %v (err %v), want 3", regs, err)
	}

	fourth := ms[3].start(t, flags...)
	code, exited := fourth.Wait(30 * time.Second)
	if !exited || code == 0 {
		t.Fatalf("a fourth member with a full registry: exited=%v code=%d, want a refusal", exited, code)
	}
	if !fourth.LogContains("discovery: cluster is full") || !fourth.LogContains("member add") {
		t.Fatalf("the refusal does not say the cluster is full and what to do:\n%s", fourth.LogTail(5))
	}
	if _, err := os.Stat(ms[3].dataDir); !os.IsNotExist(err) {
		t.Fatalf("the refused member left its data dir behind (stat: %v)", err)
	}
	// A restarted member skips discovery: its data dir already holds state.
	procs[0].Kill(t)
	procs[0].Start(t)
	procs[0].WaitHealthy(t, 30*time.Second)
}

// TestDiscoveryRefusals: discovery cannot join a running cluster, nor mix
// with --initial-cluster; a missing size key is named with the fix.
func TestDiscoveryRefusals(t *testing.T) {
	framework.SkipUnlessCadre(t)
	m := newDiscoveryMembers(t, "r1")[0]
	for _, tc := range []struct {
		flags []string
		code  int
		want  string
	}{
		{[]string{"--discovery-token", "t", "--discovery-endpoints", "127.0.0.1:1", "--initial-cluster-state", "existing"}, 2,
			"--discovery-token is set with --initial-cluster-state=existing"},
		{[]string{"--discovery-srv", "example.com", "--initial-cluster-state", "existing"}, 2,
			"--discovery-srv is set with --initial-cluster-state=existing"},
		{[]string{"--discovery-token", "t", "--discovery-endpoints", "127.0.0.1:1", "--initial-cluster", "r1=" + m.peer}, 2,
			"--initial-cluster and --discovery-token are both set"},
	} {
		res := framework.RunProcessIn(t, "", 30*time.Second, framework.Server(t), m.args(tc.flags...), nil, nil)
		if res.Code != tc.code || !strings.Contains(res.Stderr, tc.want) {
			t.Errorf("cadre %v: exit %d, stderr %q; want exit %d and %q", tc.flags, res.Code, res.Stderr, tc.code, tc.want)
		}
		if _, err := os.Stat(m.dataDir); !os.IsNotExist(err) {
			t.Fatalf("a refused start created %s", m.dataDir)
		}
	}

	// No size key on the discovery service: refused, naming the key.
	disc := framework.NewCluster(t, 1, framework.Options{Token: "discovery-service"})
	res := framework.RunProcessIn(t, "", 30*time.Second, framework.Server(t),
		m.args("--discovery-token", "nosize", "--discovery-endpoints", disc.Members[0].Endpoint()), nil, nil)
	if res.Code != 1 || !strings.Contains(res.Stderr, "/_etcd/registry/nosize/_config/size is not set") {
		t.Errorf("no size key: exit %d, stderr %q", res.Code, res.Stderr)
	}
}

// TestDiscoverySRV: three members bootstrap from SRV records served by a
// small DNS server on loopback (targets "localhost", which every member can
// dial); each finds itself among the records by address.
func TestDiscoverySRV(t *testing.T) {
	framework.SkipUnlessCadre(t)
	ctx := ctxFor(t, 2*time.Minute)
	ms := newDiscoveryMembers(t, "s1", "s2", "s3")
	var srvs []dnsmessage.SRVResource
	for _, m := range ms {
		_, port, _ := net.SplitHostPort(strings.TrimPrefix(m.peer, "http://"))
		var p uint16
		fmt.Sscan(port, &p)
		srvs = append(srvs, dnsmessage.SRVResource{Priority: 0, Weight: 10, Port: p, Target: dnsmessage.MustNewName("localhost.")})
	}
	dns := startDNS(t, map[string][]dnsmessage.SRVResource{"_etcd-server._tcp.cadre.test.": srvs})
	var procs []*framework.Member
	for _, m := range ms {
		procs = append(procs, m.start(t, "--discovery-srv", "cadre.test", "--discovery-srv-resolver", dns))
	}
	checkFormed(t, ctx, procs, []string{"s1", "s2", "s3"})
	// Every member derives IDs from the records' spelling of the URLs.
	ml, err := framework.NewClient(t, procs[0].Endpoint()).MemberList(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range ml.Members {
		if len(m.PeerURLs) != 1 || !strings.HasPrefix(m.PeerURLs[0], "http://localhost:") {
			t.Errorf("member %s peer URLs %v, want the SRV target's http://localhost:<port>", m.Name, m.PeerURLs)
		}
	}
	if !procs[0].LogContains("initial cluster from DNS SRV records") {
		t.Error("the member did not log the cluster it built from the SRV records")
	}

	// A domain without records is refused, naming the records looked for.
	other := newDiscoveryMembers(t, "s4")[0]
	res := framework.RunProcessIn(t, "", 30*time.Second, framework.Server(t),
		other.args("--discovery-srv", "empty.test", "--discovery-srv-resolver", dns), nil, nil)
	if res.Code == 0 || !strings.Contains(res.Stderr, "_etcd-server._tcp.empty.test") {
		t.Errorf("no SRV records: exit %d, stderr %q", res.Code, res.Stderr)
	}
}

// startDNS serves the given SRV records over UDP on 127.0.0.1 and answers
// NXDOMAIN to anything else. It stops when the test ends.
func startDNS(t *testing.T, records map[string][]dnsmessage.SRVResource) string {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	t.Cleanup(func() { pc.Close(); wg.Wait() })
	go func() {
		defer wg.Done()
		buf := make([]byte, 1500)
		for {
			n, addr, err := pc.ReadFrom(buf)
			if err != nil {
				return // closed at cleanup
			}
			if reply := answerDNS(buf[:n], records); reply != nil {
				_, _ = pc.WriteTo(reply, addr)
			}
		}
	}()
	return pc.LocalAddr().String()
}

func answerDNS(query []byte, records map[string][]dnsmessage.SRVResource) []byte {
	var p dnsmessage.Parser
	h, err := p.Start(query)
	if err != nil {
		return nil
	}
	q, err := p.Question()
	if err != nil {
		return nil
	}
	srvs, ok := records[strings.ToLower(q.Name.String())]
	rh := dnsmessage.Header{ID: h.ID, Response: true, Authoritative: true}
	if !ok || q.Type != dnsmessage.TypeSRV {
		rh.RCode = dnsmessage.RCodeNameError
		if ok {
			rh.RCode = dnsmessage.RCodeSuccess
		}
	}
	b := dnsmessage.NewBuilder(nil, rh)
	b.EnableCompression()
	if b.StartQuestions() != nil || b.Question(q) != nil || b.StartAnswers() != nil {
		return nil
	}
	if ok && q.Type == dnsmessage.TypeSRV {
		for _, s := range srvs {
			if b.SRVResource(dnsmessage.ResourceHeader{Name: q.Name, Class: dnsmessage.ClassINET, TTL: 5}, s) != nil {
				return nil
			}
		}
	}
	out, err := b.Finish()
	if err != nil {
		return nil
	}
	return out
}
