package e2e

import (
	"bufio"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/cadrekv/cadre/tests/framework"
)

// TestMetricsAndHTTPEndpoints checks the endpoints etcd serves on client
// URLs, and that etcd's core metric names are there for existing dashboards.
func TestMetricsAndHTTPEndpoints(t *testing.T) {
	framework.SkipUnlessCadre(t)
	c := framework.NewCluster(t, 1, framework.Options{})
	base := c.Members[0].Endpoint()
	// One write so the proposal and fsync metrics have observations.
	if r := c.Etcdctl(t, "put", "k", "v"); r.Code != 0 {
		t.Fatalf("put: %s", r)
	}
	body := httpGet(t, base+"/metrics", 200)
	for _, name := range []string{
		"etcd_server_has_leader 1",
		"etcd_server_is_leader 1",
		"etcd_server_leader_changes_seen_total",
		"etcd_server_proposals_committed_total",
		"etcd_server_proposals_applied_total",
		"etcd_server_proposals_pending",
		"etcd_server_proposals_failed_total",
		"etcd_disk_wal_fsync_duration_seconds_count",
		"etcd_disk_backend_commit_duration_seconds_count",
		"etcd_mvcc_db_total_size_in_bytes",
		`etcd_server_version{server_version="3.7.3"} 1`,
	} {
		if !strings.Contains(body, name) {
			t.Errorf("/metrics lacks %q", name)
		}
	}
	if strings.Contains(body, "etcd_disk_wal_fsync_duration_seconds_count 0\n") {
		t.Errorf("no WAL fsync was observed after a write")
	}
	var health struct{ Health string }
	if err := json.Unmarshal([]byte(httpGet(t, base+"/health", 200)), &health); err != nil || health.Health != "true" {
		t.Fatalf("/health = %+v (%v)", health, err)
	}
	httpGet(t, base+"/livez", 200)
	httpGet(t, base+"/readyz", 200)
	// etcd's verbose form names each check.
	if body := httpGet(t, base+"/readyz?verbose", 200); !strings.Contains(body, "[+]data_corruption ok") || !strings.Contains(body, "[+]linearizable_read ok") {
		t.Errorf("/readyz?verbose = %q", body)
	}
	if body := httpGet(t, base+"/livez?verbose=true", 200); !strings.Contains(body, "[+]serializable_read ok") {
		t.Errorf("/livez?verbose = %q", body)
	}
	var v map[string]string
	if err := json.Unmarshal([]byte(httpGet(t, base+"/version", 200)), &v); err != nil || !strings.HasPrefix(v["etcdserver"], "3.7") {
		t.Fatalf("/version = %v (%v)", v, err)
	}
	// pprof is off unless --enable-pprof.
	httpGet(t, base+"/debug/pprof/", 404)
}

// TestStructuredLogs checks every log line is JSON with level, ts and msg,
// member lines carry the member and cluster IDs, and the start-up and
// ready lines are there. A restart logs that the initial-* flags are ignored.
func TestStructuredLogs(t *testing.T) {
	framework.SkipUnlessCadre(t)
	c := framework.NewCluster(t, 1, framework.Options{})
	m := c.Members[0]
	checkLog := func() {
		t.Helper()
		var sawStart, sawReady bool
		sc := bufio.NewScanner(strings.NewReader(m.Log()))
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			if strings.HasPrefix(line, "==== framework:") || line == "" {
				continue
			}
			var ev map[string]any
			if err := json.Unmarshal([]byte(line), &ev); err != nil {
				t.Fatalf("log line is not JSON: %q", line)
			}
			for _, k := range []string{"level", "ts", "msg"} {
				if _, ok := ev[k]; !ok {
					t.Fatalf("log line lacks %q: %s", k, line)
				}
			}
			if _, err := time.Parse(time.RFC3339Nano, ev["ts"].(string)); err != nil {
				t.Fatalf("ts is not RFC 3339: %s", line)
			}
			switch ev["msg"] {
			case "starting member":
				sawStart = true
				for _, k := range []string{"local-member-id", "cluster-id", "name", "data-dir", "listen-peer-urls", "advertise-client-urls"} {
					if _, ok := ev[k]; !ok {
						t.Errorf("start-up line lacks %q: %s", k, line)
					}
				}
			case "ready to serve client requests":
				sawReady = true
				if _, ok := ev["local-member-id"]; !ok {
					t.Errorf("ready line lacks the member ID: %s", line)
				}
			}
		}
		if !sawStart || !sawReady {
			t.Fatalf("start-up line seen: %v, ready line seen: %v", sawStart, sawReady)
		}
	}
	checkLog()
	if code := m.Stop(t); code != 0 {
		t.Fatalf("SIGTERM exit code %d, want 0", code)
	}
	m.Restart(t)
	if !m.LogContains("ignoring --initial-cluster") {
		t.Fatalf("a restart with a data dir did not log that the initial-* flags are ignored")
	}
	checkLog()
}

func httpGet(t *testing.T, url string, want int) string {
	t.Helper()
	client := &http.Client{Timeout: 10 * time.Second}
	resp, err := client.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if resp.StatusCode != want {
		t.Fatalf("GET %s: status %d, want %d: %s", url, resp.StatusCode, want, b)
	}
	return string(b)
}
