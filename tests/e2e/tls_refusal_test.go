package e2e

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cadrekv/cadre/tests/framework"
)

// hostPort is the host:port of an http(s) URL.
func hostPort(u string) string { return u[strings.Index(u, "://")+3:] }

// httpsGet fetches /health with the given client TLS.
func httpsGet(base string, cfg *tls.Config) error {
	cl := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: cfg, DisableKeepAlives: true}}
	resp, err := cl.Get(base + "/health")
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("status %d", resp.StatusCode)
	}
	return nil
}

// closedWithin reports whether the server closes conn within d (reads
// until EOF or an error other than our own deadline).
func closedWithin(conn net.Conn, d time.Duration) bool {
	_ = conn.SetReadDeadline(time.Now().Add(d))
	_, err := io.Copy(io.Discard, conn)
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		return false
	}
	return true
}

// goroutines reads the member's goroutine count from /debug/pprof.
func goroutines(t *testing.T, base string, cfg *tls.Config) int {
	t.Helper()
	cl := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: cfg, DisableKeepAlives: true}}
	resp, err := cl.Get(base + "/debug/pprof/goroutine?debug=1")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	line, _ := bufio.NewReader(resp.Body).ReadString('\n')
	m := regexp.MustCompile(`total (\d+)`).FindStringSubmatch(line)
	if m == nil {
		t.Fatalf("no goroutine total in %q", line)
	}
	n, _ := strconv.Atoi(m[1])
	return n
}

// TestTLSClientPortRefusals: with --client-cert-auth, a certificate from
// another CA, an expired certificate, plain HTTP, garbage bytes and a
// handshake that never finishes are all refused, and the connections that
// never finish are closed after --tls-handshake-timeout without leaving
// goroutines behind. The peer port refuses the same way.
func TestTLSClientPortRefusals(t *testing.T) {
	framework.SkipUnlessCadre(t) // --tls-handshake-timeout is Cadre's
	ct := framework.NewClusterTLS(t)
	c := framework.NewCluster(t, 1, framework.Options{TLS: ct, ExtraFlags: []string{"--tls-handshake-timeout", "1s", "--enable-pprof"}})
	m := c.Members[0]
	good := ct.CA.ClientTLS(t, ct.ClientCert, ct.ClientKey)
	if err := httpsGet(m.Endpoint(), good); err != nil {
		t.Fatalf("a valid client certificate is refused: %v", err)
	}

	other := framework.NewCA(t, "other")
	oc, ok := other.Issue(t, "intruder", framework.CertOptions{CN: "root"})
	expC, expK := ct.CA.Issue(t, "expired", framework.CertOptions{CN: "root", NotBefore: time.Now().Add(-48 * time.Hour), NotAfter: time.Now().Add(-24 * time.Hour)})
	for name, cfg := range map[string]*tls.Config{
		"certificate from another CA": ct.CA.ClientTLS(t, oc, ok),
		"expired certificate":         ct.CA.ClientTLS(t, expC, expK),
		"no certificate":              ct.CA.ClientTLS(t, "", ""),
		"TLS 1.1 (below --tls-min-version)": func() *tls.Config {
			c := ct.CA.ClientTLS(t, ct.ClientCert, ct.ClientKey)
			c.MinVersion, c.MaxVersion = tls.VersionTLS10, tls.VersionTLS11
			return c
		}(),
	} {
		if err := httpsGet(m.Endpoint(), cfg); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	// The real etcdctl with a certificate from another CA fails too.
	res := framework.RunProcessIn(t, "", 30*time.Second, framework.Etcdctl(t),
		[]string{"--endpoints", m.Endpoint(), "--cacert", ct.CA.CertFile, "--cert", oc, "--key", ok, "--dial-timeout", "2s", "--command-timeout", "3s", "get", "x"}, nil, nil)
	if res.Code == 0 {
		t.Errorf("etcdctl with a certificate from another CA: %s", res)
	}
	if !m.LogContains("rejected connection on client endpoint") {
		t.Error("refused handshakes are not logged")
	}

	base := goroutines(t, m.Endpoint(), good)
	for _, addr := range []string{hostPort(m.Endpoint()), hostPort(m.PeerURL())} {
		// Plain HTTP to an https port.
		cl := &http.Client{Timeout: 5 * time.Second}
		if resp, err := cl.Get("http://" + addr + "/health"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				t.Errorf("plain HTTP to https %s answered 200", addr)
			}
		}
		expectGarbageClosed(t, addr)
		// Many connections that never start a handshake: all closed after
		// the 1 s timeout.
		idle := openConns(t, addr, 50, nil)
		if took := expectAllClosed(t, addr, "silent", idle, 5*time.Second); took < 500*time.Millisecond {
			t.Errorf("%s closed silent connections after %v, before the 1s handshake timeout", addr, took)
		}
	}
	// No goroutine growth once the refused connections are gone.
	expectGoroutinesBack(t, m.Endpoint(), good, base, "refused connections")
}

// TestTLSPeerRefusals: a member whose peer certificate has a CommonName
// outside --peer-cert-allowed-cn, or comes from another CA, never joins,
// and the members log why.
func TestTLSPeerRefusals(t *testing.T) {
	testPeerRefusals(t, []string{"--peer-cert-allowed-cn", "infra"}, []peerRefusal{
		{"wrongcn", `CommonName \"intruder\" is not in --peer-cert-allowed-cn`, func(ct *framework.ClusterTLS) (string, string) {
			return ct.CA.Issue(t, "intruder", framework.CertOptions{CN: "intruder"})
		}},
		{"otherca", "certificate signed by unknown authority", func(*framework.ClusterTLS) (string, string) {
			return framework.NewCA(t, "other").Issue(t, "foreign", framework.CertOptions{CN: "infra"})
		}},
	})
}

// TestTLSPeerHostnameRefusal (Cadre: etcd logs it differently): a peer
// certificate not valid for --peer-cert-allowed-hostname never joins.
func TestTLSPeerHostnameRefusal(t *testing.T) {
	framework.SkipUnlessCadre(t)
	testPeerRefusals(t, []string{"--peer-cert-allowed-hostname", "localhost"}, []peerRefusal{
		{"wronghost", "--peer-cert-allowed-hostname localhost", func(ct *framework.ClusterTLS) (string, string) {
			return ct.CA.Issue(t, "nohost", framework.CertOptions{CN: "infra", Hosts: []string{"127.0.0.1"}})
		}},
	})
}

type peerRefusal struct {
	name, reason string
	cert         func(*framework.ClusterTLS) (string, string)
}

func testPeerRefusals(t *testing.T, flags []string, cases []peerRefusal) {
	ct := framework.NewClusterTLS(t)
	c := framework.NewCluster(t, 3, framework.Options{TLS: ct, ExtraFlags: flags})
	for _, pr := range cases {
		tc := struct {
			name, reason string
			cert, key    string
		}{name: pr.name, reason: pr.reason}
		tc.cert, tc.key = pr.cert(ct)
		ports := framework.FreePorts(t, 2)
		peer, client := fmt.Sprintf("https://127.0.0.1:%d", ports[0]), fmt.Sprintf("https://127.0.0.1:%d", ports[1])
		res := etcdctlWhileUnhealthy(t, c, "member", "add", tc.name, "--peer-urls="+peer)
		if res.Code != 0 {
			t.Fatalf("member add %s: %s", tc.name, res)
		}
		flags := []string{"--data-dir", c.Dir() + "/" + tc.name + ".data",
			"--listen-peer-urls", peer, "--listen-client-urls", client, "--advertise-client-urls", client,
			"--cert-file", ct.ServerCert, "--key-file", ct.ServerKey, "--trusted-ca-file", ct.CA.CertFile, "--client-cert-auth",
			"--peer-cert-file", tc.cert, "--peer-key-file", tc.key, "--peer-trusted-ca-file", ct.CA.CertFile, "--peer-client-cert-auth"}
		m := c.AddMemberProcess(t, tc.name, flags, etcdEnvLines(res.Stdout))
		// It never becomes healthy: it cannot talk to any member. Wait
		// until a member has refused it (bounded), then a little longer.
		logged := func() bool {
			for _, o := range c.Members {
				if o.LogContains(tc.reason) || (tc.name == "otherca" && o.LogContains("unknown certificate authority")) {
					return true
				}
			}
			return false
		}
		for deadline := time.Now().Add(15 * time.Second); framework.IsCadre() && !logged() && time.Now().Before(deadline); {
			time.Sleep(100 * time.Millisecond)
		}
		time.Sleep(2 * time.Second)
		if m.Healthy() {
			t.Fatalf("%s joined with a refused peer certificate", tc.name)
		}
		if framework.IsCadre() && !logged() {
			t.Errorf("%s: no member logged the reason %q", tc.name, tc.reason)
		}
		m.Kill(t)
		// Remove the never-started member so the next add is not refused
		// for lack of quorum headroom.
		ml := c.Etcdctl(t, "member", "list")
		for _, line := range strings.Split(ml.Stdout, "\n") {
			if strings.Contains(line, peer) {
				id := strings.TrimSpace(strings.Split(line, ",")[0])
				if r := etcdctlWhileUnhealthy(t, c, "member", "remove", id); r.Code != 0 {
					t.Fatalf("member remove %s: %s", id, r)
				}
			}
		}
	}
	// The cluster is unharmed.
	if res := c.Etcdctl(t, "put", "/tls/after", "ok"); res.Code != 0 {
		t.Fatalf("cluster after refusing peers: %s", res)
	}
}

// TestTLSCertificateRotation: replacing the certificate files makes new
// connections see the new certificate, with no restart.
func TestTLSCertificateRotation(t *testing.T) {
	framework.SkipUnlessCadre(t) // etcd re-reads on its own schedule
	ct := framework.NewClusterTLS(t)
	c := framework.NewCluster(t, 1, framework.Options{TLS: ct})
	m := c.Members[0]
	serial := func() string {
		t.Helper()
		cfg := ct.CA.ClientTLS(t, ct.ClientCert, ct.ClientKey)
		conn, err := tls.Dial("tcp", hostPort(m.Endpoint()), cfg)
		if err != nil {
			t.Fatalf("tls dial: %v", err)
		}
		defer conn.Close()
		return conn.ConnectionState().PeerCertificates[0].SerialNumber.String()
	}
	before := serial()
	rotated := ct.CA.IssueTo(t, ct.ServerCert, ct.ServerKey, framework.CertOptions{CN: "infra"})
	want := rotated.SerialNumber.String()
	var got string
	for deadline := time.Now().Add(10 * time.Second); ; {
		got = serial()
		if got == want || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if got != want || got == before {
		t.Fatalf("after rotation the server presents serial %s, want the new %s (old %s)", got, want, before)
	}
	if !m.Running() {
		t.Fatal("the member restarted or stopped during rotation")
	}
	if res := c.Etcdctl(t, "put", "/tls/rotated", "yes"); res.Code != 0 {
		t.Fatalf("etcdctl after rotation: %s", res)
	}
}

// expectGarbageClosed sends garbage bytes to addr; the server must close
// the connection within 5 s.
func expectGarbageClosed(t *testing.T, addr string) {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_, _ = conn.Write([]byte("\x00\x01garbage\r\n\r\n"))
	if !closedWithin(conn, 5*time.Second) {
		t.Errorf("%s kept a connection that sent garbage", addr)
	}
}

// openConns opens n connections to addr, each sending first (which may be
// empty) and then nothing.
func openConns(t *testing.T, addr string, n int, first []byte) []net.Conn {
	t.Helper()
	conns := make([]net.Conn, 0, n)
	for range n {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		if len(first) > 0 {
			_, _ = c.Write(first)
		}
		conns = append(conns, c)
	}
	return conns
}

// expectAllClosed waits for the server to close every one of conns, each
// within d, and returns how long that took.
func expectAllClosed(t *testing.T, addr, what string, conns []net.Conn, d time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	for i, c := range conns {
		if !closedWithin(c, d) {
			t.Fatalf("%s: %s connection %d still open after %v", addr, what, i, time.Since(start))
		}
		c.Close()
	}
	return time.Since(start)
}

// expectGoroutinesBack waits up to 5 s for the member's goroutine count to
// come back to within 5 of base.
func expectGoroutinesBack(t *testing.T, endpoint string, cfg *tls.Config, base int, after string) {
	t.Helper()
	var n int
	for deadline := time.Now().Add(5 * time.Second); ; {
		n = goroutines(t, endpoint, cfg)
		if n <= base+5 || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if n > base+5 {
		t.Errorf("goroutines grew from %d to %d after %s", base, n, after)
	}
}
