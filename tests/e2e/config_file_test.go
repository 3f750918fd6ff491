package e2e

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/cadrekv/cadre/tests/framework"
)

// TestConfigFileMember: a member configured by an etcd YAML file alone
// (--config-file), with TLS and client certificates on the client port
// from client-transport-security, serves client/v3. Flags and ETCD_*
// variables given alongside are ignored, as etcd ignores them.
func TestConfigFileMember(t *testing.T) {
	ports := framework.FreePorts(t, 2)
	client := fmt.Sprintf("https://127.0.0.1:%d", ports[0])
	peer := fmt.Sprintf("http://127.0.0.1:%d", ports[1])
	ca := framework.NewCA(t, "cfgfile")
	srvCert, srvKey := ca.Issue(t, "server", framework.CertOptions{})
	cliCert, cliKey := ca.Issue(t, "client", framework.CertOptions{CN: "client"})
	dir := t.TempDir()
	dataDir := filepath.Join(dir, "from-file.data")
	file := filepath.Join(dir, "etcd.conf.yml")
	yml := fmt.Sprintf(`# written like etcd.conf.yml.sample
name: 'fromfile'
data-dir: %s
wal-dir:
heartbeat-interval: 50
election-timeout: 500
listen-peer-urls: %s
listen-client-urls: %s
initial-advertise-peer-urls: %s
advertise-client-urls: %s
initial-cluster: fromfile=%s
initial-cluster-token: 'cfgfile-e2e'
initial-cluster-state: 'new'
client-transport-security:
  cert-file: %s
  key-file: %s
  client-cert-auth: true
  trusted-ca-file: %s
  auto-tls: false
log-level: info
log-outputs: [stderr]
`, dataDir, peer, client, peer, client, peer, srvCert, srvKey, ca.CertFile)
	if err := os.WriteFile(file, []byte(yml), 0o600); err != nil {
		t.Fatal(err)
	}
	clientTLS := ca.ClientTLS(t, cliCert, cliKey)
	m := framework.StartServer(t, framework.ServerSpec{
		Name: "fromfile",
		Args: []string{"--config-file", file, "--name", "fromflag", "--listen-client-urls", "http://127.0.0.1:1"},
		Env:  []string{"ETCD_NAME=fromenv", "ETCD_DATA_DIR=" + filepath.Join(dir, "from-env.data")},
		Dir:  dir, ClientURL: client, DataDir: dataDir, TLS: clientTLS,
	})
	m.WaitHealthy(t, framework.DefaultHealthTimeout)

	cli := framework.NewClientTLS(t, clientTLS, client)
	if _, err := cli.Put(ctxFor(t, opTimeout), "/cfg/a", "1"); err != nil {
		t.Fatalf("put: %v", err)
	}
	r, err := cli.Get(ctxFor(t, opTimeout), "/cfg/a")
	if err != nil || len(r.Kvs) != 1 || string(r.Kvs[0].Value) != "1" {
		t.Fatalf("get: %v %v", err, r)
	}
	ml, err := cli.MemberList(ctxFor(t, opTimeout))
	if err != nil || len(ml.Members) != 1 || ml.Members[0].Name != "fromfile" {
		t.Fatalf("member list: %v %v; want one member named by the file", err, ml)
	}
	if _, err := os.Stat(filepath.Join(dataDir, "member")); err != nil {
		t.Errorf("data-dir from the file not used: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "from-env.data")); err == nil {
		t.Errorf("ETCD_DATA_DIR was used despite --config-file")
	}
	// client-cert-auth from the file acts: no certificate, no service.
	noCert := framework.NewClientTLS(t, ca.ClientTLS(t, "", ""), client)
	if _, err := noCert.Get(ctxFor(t, 2*time.Second), "/cfg/a"); err == nil {
		t.Errorf("a client without a certificate was served; client-cert-auth from the file ignored")
	}
	if framework.IsCadre() {
		for _, want := range []string{"command-line flags --listen-client-urls --name are ignored", "environment variables ETCD_DATA_DIR ETCD_NAME are ignored"} {
			if !m.LogContains(want) {
				t.Errorf("log lacks the warning %q", want)
			}
		}
	}
}

// TestConfigFileBadKeyExits: a wrong value in the file stops the member
// before it creates anything, naming the file, line and key.
func TestConfigFileBadKeyExits(t *testing.T) {
	framework.SkipUnlessCadre(t)
	dir := t.TempDir()
	file := filepath.Join(dir, "etcd.conf.yml")
	if err := os.WriteFile(file, []byte("name: infra1\ndata-dir: "+filepath.Join(dir, "data")+"\nheartbeat-interval: fast\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	res := framework.RunProcessIn(t, dir, 10*time.Second, framework.Server(t), []string{"--config-file", file}, nil, nil)
	if res.Code != 2 {
		t.Fatalf("exit %d, want 2: %s", res.Code, res)
	}
	for _, want := range []string{file, "line 3", `key "heartbeat-interval"`, `"fast"`, "milliseconds"} {
		if !strings.Contains(res.Stderr, want) {
			t.Errorf("stderr lacks %q: %s", want, res.Stderr)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "data")); err == nil {
		t.Errorf("data dir created despite the error")
	}
}

// TestWatchProgressNotifyInterval: with --watch-progress-notify-interval,
// a watch created with progress notification and no events gets an empty
// response carrying the current revision at that interval; a watch
// without the option gets nothing.
func TestWatchProgressNotifyInterval(t *testing.T) {
	c := framework.NewCluster(t, 1, framework.Options{ExtraFlags: []string{"--watch-progress-notify-interval=200ms"}})
	cli := c.Client(t)
	put, err := cli.Put(ctxFor(t, opTimeout), "/other", "1")
	if err != nil {
		t.Fatal(err)
	}
	ctx := ctxFor(t, time.Minute)
	withProgress := cli.Watch(ctx, "/watched", clientv3.WithProgressNotify())
	plain := cli.Watch(clientv3.WithRequireLeader(ctx), "/watched")

	start := time.Now()
	next := func(want int64) {
		t.Helper()
		select {
		case r, ok := <-withProgress:
			if !ok || r.Err() != nil {
				t.Fatalf("watch ended: %v", r.Err())
			}
			if !r.IsProgressNotify() || r.Header.Revision != want {
				t.Fatalf("got %d events at revision %d (progress %v); want a progress notification at revision %d", len(r.Events), r.Header.Revision, r.IsProgressNotify(), want)
			}
		case <-time.After(1500 * time.Millisecond):
			t.Fatalf("no progress notification within 1.5s of the previous one (interval 200ms)")
		}
	}
	next(put.Header.Revision)
	if d := time.Since(start); d > 1200*time.Millisecond {
		t.Errorf("first progress notification after %v; want about 200ms", d)
	}
	// The notification follows the store's revision, even for writes to
	// other keys.
	put2, err := cli.Put(ctxFor(t, opTimeout), "/other", "2")
	if err != nil {
		t.Fatal(err)
	}
	waitProgressAt(t, withProgress, put2.Header.Revision, 3*time.Second)
	select {
	case r := <-plain:
		t.Fatalf("a watch without progress notification got a response: progress %v, events %v", r.IsProgressNotify(), r.Events)
	case <-time.After(time.Second):
	}
}

// waitProgressAt reads progress notifications until one carries rev.
func waitProgressAt(t *testing.T, wch clientv3.WatchChan, rev int64, d time.Duration) {
	t.Helper()
	deadline := time.After(d)
	for {
		select {
		case r := <-wch:
			if !r.IsProgressNotify() {
				t.Fatalf("an event on a key nobody wrote: %v", r.Events)
			}
			if r.Header.Revision == rev {
				return
			}
		case <-deadline:
			t.Fatalf("no progress notification at revision %d within %v", rev, d)
		}
	}
}

// TestListenClientHTTPURLs: with --listen-client-http-urls the HTTP
// endpoints move there and the client URLs serve gRPC only, as in etcd;
// --listen-metrics-urls serve /metrics and /health.
func TestListenClientHTTPURLs(t *testing.T) {
	ports := framework.FreePorts(t, 4)
	client := fmt.Sprintf("http://127.0.0.1:%d", ports[0])
	httpURL := fmt.Sprintf("http://127.0.0.1:%d", ports[1])
	peer := fmt.Sprintf("http://127.0.0.1:%d", ports[2])
	metrics := fmt.Sprintf("http://127.0.0.1:%d", ports[3])
	dir := t.TempDir()
	m := framework.StartServer(t, framework.ServerSpec{
		Name: "infra1",
		Args: []string{"--name", "infra1", "--data-dir", filepath.Join(dir, "data"),
			"--listen-client-urls", client, "--advertise-client-urls", client, "--listen-client-http-urls", httpURL,
			"--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer, "--initial-cluster", "infra1=" + peer,
			"--listen-metrics-urls", metrics},
		Dir: dir, ClientURL: httpURL,
	})
	m.WaitHealthy(t, framework.DefaultHealthTimeout) // /health answers on the HTTP URL
	cli := framework.NewClient(t, client)
	if _, err := cli.Put(ctxFor(t, opTimeout), "k", "v"); err != nil {
		t.Fatalf("gRPC on --listen-client-urls: %v", err)
	}
	hc := &http.Client{Timeout: 2 * time.Second}
	for _, u := range []string{httpURL + "/version", metrics + "/metrics", metrics + "/health"} {
		resp, err := hc.Get(u)
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: %v %v", u, err, resp)
		}
		resp.Body.Close()
	}
	if resp, err := hc.Post(metrics+"/v3/cluster/member/list", "application/json", strings.NewReader("{}")); err == nil {
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			t.Errorf("the metrics URL serves the members gateway")
		}
	}
	resp, err := hc.Get(client + "/health")
	if err == nil {
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			t.Fatalf("GET /health on the gRPC-only client URL answered 200: %s", body)
		}
		if framework.IsCadre() && !strings.Contains(string(body), "--listen-client-http-urls "+httpURL) {
			t.Errorf("the answer on the client URL does not point to the HTTP URL: %d %s", resp.StatusCode, body)
		}
	}
}
