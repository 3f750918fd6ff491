package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cadrekv/cadre/tests/framework"
)

// Exit code and log line of a removed Cadre member (README, issue 3).
const (
	removedExitCode = 3
	removedLogLine  = "the member has been permanently removed from the cluster"
)

var (
	updatedRE = regexp.MustCompile(`^Member\s+([0-9a-f]+) updated in cluster\s+([0-9a-f]+)$`)
	removedRE = regexp.MustCompile(`^Member\s+([0-9a-f]+) removed from cluster\s+([0-9a-f]+)$`)
)

// membParseIDs checks etcdctl's one-line answer against re and returns the
// member and cluster IDs it names.
func membParseIDs(t *testing.T, re *regexp.Regexp, out string) (id, cid uint64) {
	t.Helper()
	m := re.FindStringSubmatch(strings.TrimSpace(out))
	if m == nil {
		t.Fatalf("etcdctl printed %q, want a line matching %s", out, re)
	}
	id, _ = strconv.ParseUint(m[1], 16, 64)
	cid, _ = strconv.ParseUint(m[2], 16, 64)
	return id, cid
}

// TestArticleScenario walks the runtime-reconfiguration article on its own
// ports: list, update infra1's peer URL and restart it there, remove infra1,
// add infra4 at http://localhost:2380, refuse the wrong start, start it
// right from the printed ETCD_* settings.
func TestArticleScenario(t *testing.T) {
	specs := []framework.StaticMember{
		{Name: "infra1", ClientURL: "http://127.0.0.1:12379", PeerURL: "http://127.0.0.1:12380"},
		{Name: "infra2", ClientURL: "http://127.0.0.1:22379", PeerURL: "http://127.0.0.1:22380"},
		{Name: "infra3", ClientURL: "http://127.0.0.1:32379", PeerURL: "http://127.0.0.1:32380"},
	}
	for _, addr := range []string{"127.0.0.1:12379", "127.0.0.1:12380", "127.0.0.1:12381", "127.0.0.1:22379",
		"127.0.0.1:22380", "127.0.0.1:32379", "127.0.0.1:32380", "127.0.0.1:2380"} {
		if !framework.PortFree(addr) {
			t.Skipf("port %s is busy; the article's scenario needs its own ports", addr)
		}
	}
	c := framework.NewClusterAt(t, specs, framework.Options{})
	cli := framework.NewClient(t, specs[1].ClientURL, specs[2].ClientURL)
	cid := membClusterID(t, cli)

	// member list -w table: three started members with the article's URLs.
	header, rows := parseTable(t, membCtl(t, c, "member", "list", "-w", "table"))
	idCol, status, name := column(t, header, "ID"), column(t, header, "STATUS"), column(t, header, "NAME")
	peer, client, learner := column(t, header, "PEER ADDRS"), column(t, header, "CLIENT ADDRS"), column(t, header, "IS LEARNER")
	if len(rows) != 3 {
		t.Fatalf("member list: %d rows, want 3: %q", len(rows), rows)
	}
	ids := c.MemberIDs(t)
	for _, r := range rows {
		i := slices.IndexFunc(specs, func(s framework.StaticMember) bool { return s.Name == r[name] })
		if i < 0 || r[status] != "started" || r[peer] != specs[i].PeerURL || r[client] != specs[i].ClientURL ||
			r[learner] != "false" || r[idCol] != strconv.FormatUint(ids[r[name]], 16) {
			t.Errorf("member list row %q does not match %+v (id %x)", r, specs, ids[r[name]])
		}
	}
	for i := range 10 {
		membPutOn(t, c.Members[i%3], "/article/k"+strconv.Itoa(i), "v"+strconv.Itoa(i), 10*time.Second)
	}

	// Update infra1's peer URL, then restart it listening there.
	infra1 := c.Members[0]
	id1 := ids["infra1"]
	newPeer := "http://127.0.0.1:12381"
	uid, ucid := membParseIDs(t, updatedRE, membCtlRetry(t, c, "member", "update", strconv.FormatUint(id1, 16), "--peer-urls="+newPeer))
	if uid != id1 || ucid != cid {
		t.Fatalf("member update printed member %x cluster %x, want %x %x", uid, ucid, id1, cid)
	}
	infra1.Stop(t)
	args := framework.WithFlag(infra1.Args(), "listen-peer-urls", newPeer)
	args = framework.WithFlag(args, "initial-advertise-peer-urls", newPeer)
	args = framework.WithFlag(args, "initial-cluster", "infra1="+newPeer+",infra2="+specs[1].PeerURL+",infra3="+specs[2].PeerURL)
	infra1.SetArgs(t, args)
	infra1.Restart(t)
	membPutOn(t, infra1, "/article/after-update", "u", 20*time.Second)
	membSerializableGet(t, infra1, "/article/after-update", "u", 10*time.Second)
	if got := membList(t, cli); !slices.ContainsFunc(got, func(l string) bool {
		return strings.Contains(l, `name="infra1" peers=[`+newPeer+`]`)
	}) {
		t.Fatalf("member list after update: %q, want infra1 at %s", got, newPeer)
	}

	// Remove infra1: it leaves, and (Cadre) cannot come back on its data dir.
	rid, rcid := membParseIDs(t, removedRE, membCtlRetry(t, c, "member", "remove", strconv.FormatUint(id1, 16)))
	if rid != id1 || rcid != cid {
		t.Fatalf("member remove printed member %x cluster %x, want %x %x", rid, rcid, id1, cid)
	}
	code := membWaitExit(t, infra1, 20*time.Second)
	if framework.IsCadre() {
		if code != removedExitCode || !infra1.LogContains(removedLogLine) {
			t.Fatalf("removed infra1: exit %d, want %d with log line %q\n%s", code, removedExitCode, removedLogLine, infra1.LogTail(20))
		}
		membRestartRemoved(t, infra1)
	} else {
		t.Logf("removed infra1 exited %d (etcd: 0)", code)
	}
	c.Drop("infra1")

	// Announce infra4.
	added := membAdd(t, c, "infra4", "--peer-urls=http://localhost:2380")
	if added.ClusterID != cid || added.Learner || added.ID == 0 {
		t.Fatalf("member add: %+v, cluster %x", added, cid)
	}
	wantEnv := map[string]string{
		"ETCD_NAME":                        "infra4",
		"ETCD_INITIAL_ADVERTISE_PEER_URLS": "http://localhost:2380",
		"ETCD_INITIAL_CLUSTER_STATE":       "existing",
	}
	for k, v := range wantEnv {
		if added.Env[k] != v {
			t.Errorf("member add printed %s=%q, want %q", k, added.Env[k], v)
		}
	}
	gotCluster := strings.Split(added.Env["ETCD_INITIAL_CLUSTER"], ",")
	if wantCluster := []string{"infra4=http://localhost:2380", "infra2=" + specs[1].PeerURL, "infra3=" + specs[2].PeerURL}; !sameSet(gotCluster, wantCluster) {
		t.Fatalf("ETCD_INITIAL_CLUSTER=%q, want %q", gotCluster, wantCluster)
	}
	ports := framework.FreePorts(t, 2)
	client4 := membURL(ports[0])

	// The article's wrong start: infra4 at 127.0.0.1:2380 instead of localhost.
	listBefore := membList(t, cli)
	leaderBefore, termBefore := c.LeaderStatus(t)
	wrongDir := filepath.Join(c.Dir(), "infra4-wrong.data")
	wrongCluster := "infra4=http://127.0.0.1:2380,infra2=" + specs[1].PeerURL + ",infra3=" + specs[2].PeerURL
	wrong := []string{
		"--name", "infra4", "--data-dir", wrongDir,
		"--listen-client-urls", membURL(ports[1]), "--advertise-client-urls", membURL(ports[1]),
		"--listen-peer-urls", "http://127.0.0.1:2380", "--initial-advertise-peer-urls", "http://127.0.0.1:2380",
		"--initial-cluster", wrongCluster, "--initial-cluster-state", "existing",
	}
	start := time.Now()
	res := framework.RunProcessIn(t, c.Dir(), 20*time.Second, framework.Server(t), wrong, nil, nil)
	t.Logf("wrong start of infra4: exit %d after %v; its last output: %s", res.Code,
		time.Since(start).Round(time.Millisecond), membLastLine(res.Stderr))
	// etcd refuses it too ("PeerURLs: no match found for existing member").
	if res.TimedOut || res.Code == 0 {
		t.Fatalf("wrong start of infra4: want a refusal within 20s, got %s", res)
	}
	if framework.IsCadre() {
		if res.Code != 1 {
			t.Errorf("wrong start of infra4: exit %d, want 1", res.Code)
		}
		for _, want := range []string{"http://localhost:2380", "http://127.0.0.1:2380", "--initial-cluster=",
			"--initial-advertise-peer-urls=http://localhost:2380"} {
			if !strings.Contains(res.Stderr, want) {
				t.Errorf("wrong start of infra4: stderr lacks %q:\n%s", want, res.Stderr)
			}
		}
		if framework.DirHasWAL(wrongDir) {
			t.Errorf("wrong start of infra4 left a WAL in %s", wrongDir)
		}
	}
	leaderAfter, termAfter := c.LeaderStatus(t)
	if leaderAfter != leaderBefore || termAfter != termBefore {
		t.Errorf("wrong start disturbed the cluster: leader %x term %d -> leader %x term %d",
			leaderBefore, termBefore, leaderAfter, termAfter)
	}
	membUnchanged(t, cli, "the wrong start of infra4", listBefore)
	if err := os.RemoveAll(wrongDir); err != nil {
		t.Fatal(err)
	}

	// The right start, from the printed ETCD_* settings.
	infra4 := c.AddMemberProcess(t, "infra4",
		membJoinFlags(filepath.Join(c.Dir(), "infra4.data"), "http://127.0.0.1:2380", client4), added.EnvList())
	infra4.WaitHealthy(t, 30*time.Second)
	c.Append(infra4)
	eventually(t, 20*time.Second, "infra4 started in member list", func() error {
		header, rows := parseTable(t, membCtl(t, c, "member", "list", "-w", "table"))
		for _, r := range rows {
			if r[column(t, header, "NAME")] == "infra4" && r[column(t, header, "STATUS")] == "started" &&
				r[column(t, header, "PEER ADDRS")] == "http://localhost:2380" && r[column(t, header, "CLIENT ADDRS")] == client4 &&
				r[column(t, header, "ID")] == strconv.FormatUint(added.ID, 16) {
				if len(rows) != 3 {
					t.Fatalf("member list has %d rows, want 3 (infra2..4): %q", len(rows), rows)
				}
				return nil
			}
		}
		return fmt.Errorf("no started infra4 row at http://localhost:2380 / %s: %q", client4, rows)
	})
	for i := range 10 {
		membSerializableGet(t, infra4, "/article/k"+strconv.Itoa(i), "v"+strconv.Itoa(i), 20*time.Second)
	}
	membPutOn(t, infra4, "/article/from-infra4", "x", 10*time.Second)
	membSerializableGet(t, c.Members[0], "/article/from-infra4", "x", 10*time.Second)
}

// membRestartRemoved restarts a removed Cadre member on its data dir: it
// must exit again at once with the removed code and say how to rejoin.
func membRestartRemoved(t *testing.T, m *framework.Member) {
	t.Helper()
	from := len(m.Log())
	start := time.Now()
	m.Start(t)
	code, ok := m.Wait(5 * time.Second)
	if !ok {
		t.Fatalf("removed %s restarted on its data dir still runs after 5s\n%s", m.Name, m.LogTail(20))
	}
	out := m.LogSince(from)
	t.Logf("removed %s restarted: exit %d after %v", m.Name, code, time.Since(start).Round(time.Millisecond))
	if code != removedExitCode || !strings.Contains(out, "member add") ||
		!(strings.Contains(out, "data dir") || strings.Contains(out, "data-dir")) {
		t.Fatalf("removed %s restarted: exit %d, want %d with a message naming the data dir and `member add`:\n%s",
			m.Name, code, removedExitCode, out)
	}
}

// membLastLine is the last non-empty line of out, for logs.
func membLastLine(out string) string {
	l := lines(out)
	if len(l) == 0 {
		return ""
	}
	if s := l[len(l)-1]; len(s) > 400 {
		return s[:400] + "..."
	}
	return l[len(l)-1]
}
