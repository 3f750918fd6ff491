package e2e

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cadrekv/cadre/tests/framework"
)

// ecRun runs etcdctl against every member, killed after timeout: the way to
// run the commands that never end on their own (watch, elect).
func ecRun(t *testing.T, c *framework.Cluster, timeout time.Duration, args ...string) framework.Result {
	t.Helper()
	full := append([]string{"--endpoints", strings.Join(c.Endpoints(), ","), "--dial-timeout", "5s", "--command-timeout", "15s"}, args...)
	return framework.RunProcessIn(t, "", timeout, framework.Etcdctl(t), full, nil, nil)
}

var (
	ecHexID     = regexp.MustCompile(`[0-9a-f]{16}`)
	ecKeyID     = regexp.MustCompile(`(/elock|/eelect)/[0-9a-f]{1,16}\b`) // %x: not zero-padded
	ecRemaining = regexp.MustCompile(`remaining\((\d+)s\)`)
)

// ecMask hides what differs between runs: lease IDs, printed %016x by the
// lease commands and %x in lock and election keys.
func ecMask(s string) string {
	return ecKeyID.ReplaceAllString(ecHexID.ReplaceAllString(s, "<ID>"), "$1/<ID>")
}

// ecExpect fails the test unless the masked output equals want.
func ecExpect(t *testing.T, what, got, want string) {
	t.Helper()
	if m := ecMask(got); m != want {
		t.Fatalf("etcdctl %s: output (IDs masked)\n%s\nwant\n%s", what, m, want)
	}
}

// ecFailed reports whether etcdctl exited non-zero on its own with exactly
// stderr, once the client library's JSON log lines (retry warnings) are
// dropped from it.
func ecFailed(res framework.Result, stderr string) bool {
	var kept []string
	for _, l := range strings.SplitAfter(res.Stderr, "\n") {
		if !strings.HasPrefix(l, `{"level":`) {
			kept = append(kept, l)
		}
	}
	return !res.TimedOut && res.Code != 0 && strings.Join(kept, "") == stderr
}

// ecBackground runs etcdctl in a goroutine; wait returns its result.
func ecBackground(t *testing.T, c *framework.Cluster, timeout time.Duration, args ...string) (wait func() framework.Result) {
	var res framework.Result
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		res = ecRun(t, c, timeout, args...)
	}()
	return func() framework.Result { wg.Wait(); return res }
}

// TestEtcdctlWatchLeaseLockElect drives watch, lease, put --lease, lock,
// elect and compaction with the real etcdctl v3.7.3. The expected outputs
// were recorded against etcd v3.7.3, lease IDs masked.
func TestEtcdctlWatchLeaseLockElect(t *testing.T) {
	c := framework.NewCluster(t, 3, framework.Options{})
	cli := c.Client(t)
	wlNeedLease(t, cli)
	wlNeedWatch(t, cli)
	base := currentRev(t, cli)
	rv := func(i int64) string { return strconv.FormatInt(base+i, 10) }

	ctl(t, c, "put", "/ew/a", "1") // base+1
	ctl(t, c, "put", "/ew/b", "2")
	ctl(t, c, "put", "/ew/a", "3")
	if out := ctl(t, c, "del", "/ew/a"); strings.TrimSpace(out) != "1" { // base+4
		t.Fatalf("del: %q", out)
	}

	// Watches replaying history; etcdctl never exits on its own.
	sh := `echo "$ETCD_WATCH_EVENT_TYPE $ETCD_WATCH_KEY $ETCD_WATCH_VALUE $ETCD_WATCH_REVISION"`
	watches := []struct {
		name string
		args []string
		want string
	}{
		{"prefix", []string{"watch", "--rev", rv(1), "--prefix", "/ew/"},
			"PUT\n/ew/a\n1\nPUT\n/ew/b\n2\nPUT\n/ew/a\n3\nDELETE\n/ew/a\n\n"},
		{"prev-kv", []string{"watch", "--rev", rv(1), "--prev-kv", "/ew/a"},
			"PUT\n/ew/a\n1\nPUT\n/ew/a\n1\n/ew/a\n3\nDELETE\n/ew/a\n3\n/ew/a\n\n"},
		{"range", []string{"watch", "--rev", rv(2), "/ew/b", "/ew/c"},
			"PUT\n/ew/b\n2\n"},
		// One event only: how distinct revisions are batched into
		// responses is the server's choice, and exec output shows it.
		{"exec", []string{"watch", "--rev", rv(1), "/ew/b", "--", "sh", "-c", sh},
			"PUT\n/ew/b\n2\n\"PUT\" \"/ew/b\" \"2\" " + rv(4) + "\n"},
	}
	waits := make([]func() framework.Result, len(watches))
	for i, w := range watches {
		waits[i] = ecBackground(t, c, 3*time.Second, w.args...)
	}
	for i, w := range watches {
		res := waits[i]()
		if !res.TimedOut || res.Stderr != "" {
			t.Fatalf("etcdctl watch %s: want it running until killed, with no error: %s", w.name, res)
		}
		ecExpect(t, "watch "+w.name, res.Stdout, w.want)
	}

	// Leases.
	out := ctl(t, c, "lease", "grant", "100")
	ecExpect(t, "lease grant", out, "lease <ID> granted with TTL(100s)\n")
	id := ecHexID.FindString(out)
	ecExpect(t, "put --lease", ctl(t, c, "put", "--lease="+id, "/el/k", "v"), "OK\n")
	ttl := ctl(t, c, "lease", "timetolive", id)
	if m := ecRemaining.FindStringSubmatch(ttl); m == nil || m[1] < "95" || len(m[1]) != 2 {
		t.Fatalf("lease timetolive: %q, want remaining 95..99 s", ttl)
	}
	ecExpect(t, "lease timetolive", ecRemaining.ReplaceAllString(ttl, "remaining(Ns)"),
		"lease <ID> granted with TTL(100s), remaining(Ns)\n")
	ecExpect(t, "lease timetolive --keys", ecRemaining.ReplaceAllString(ctl(t, c, "lease", "timetolive", "--keys", id), "remaining(Ns)"),
		"lease <ID> granted with TTL(100s), remaining(Ns), attached keys([/el/k])\n")
	ecExpect(t, "lease keep-alive --once", ctl(t, c, "lease", "keep-alive", "--once", id), "lease <ID> keepalived with TTL(100)\n")
	ecExpect(t, "lease list", ctl(t, c, "lease", "list"), "found 1 leases\n<ID>\n")
	ecExpect(t, "lease revoke", ctl(t, c, "lease", "revoke", id), "lease <ID> revoked\n")
	ecExpect(t, "lease timetolive (revoked)", ctl(t, c, "lease", "timetolive", id), "lease <ID> already expired\n")
	ecExpect(t, "get (key of a revoked lease)", ctl(t, c, "get", "/el/k"), "")
	if res := c.Etcdctl(t, "lease", "keep-alive", "--once", id); !ecFailed(res, "Error: etcdserver: requested lease not found\n") {
		t.Fatalf("keep-alive --once of a revoked lease: %s", res)
	}
	if res := c.Etcdctl(t, "put", "--lease="+id, "/el/k", "v"); !ecFailed(res, "Error: etcdserver: requested lease not found\n") {
		t.Fatalf("put --lease of a revoked lease: %s", res)
	}

	// lock: the command runs holding the lock, which is released after.
	lockRev := base + 7 // 4 writes, put --lease, the revoke deleting its key, the lock key
	ecExpect(t, "lock", ctl(t, c, "lock", "/elock", "--", "sh", "-c", `echo "$ETCD_LOCK_KEY $ETCD_LOCK_REV"`),
		fmt.Sprintf("/elock/<ID> %d\n", lockRev))
	ecExpect(t, "get /elock (released)", ctl(t, c, "get", "--prefix", "/elock"), "")

	// elect: a campaigner holds leadership until killed; a listener sees it.
	campaigner := ecBackground(t, c, 4*time.Second, "elect", "/eelect", "p1")
	time.Sleep(time.Second)
	listener := ecRun(t, c, 2*time.Second, "elect", "-l", "/eelect")
	camp := campaigner()
	if !camp.TimedOut || camp.Stderr != "" || !listener.TimedOut || listener.Stderr != "" {
		t.Fatalf("elect: want both running until killed, with no error:\ncampaign: %s\nlisten: %s", camp, listener)
	}
	ecExpect(t, "elect (campaign)", camp.Stdout, "/eelect/<ID>\np1\n")
	ecExpect(t, "elect -l", listener.Stdout, "/eelect/<ID>\np1\n")

	// Compaction.
	ecExpect(t, "compaction", ctl(t, c, "compaction", rv(2)), "compacted revision "+rv(2)+"\n")
	ecExpect(t, "compaction --physical", ctl(t, c, "compaction", "--physical", rv(3)), "compacted revision "+rv(3)+"\n")
	const compacted = "Error: etcdserver: mvcc: required revision has been compacted\n"
	if res := c.Etcdctl(t, "compaction", rv(3)); !ecFailed(res, compacted) {
		t.Fatalf("compaction at a compacted revision: %s", res)
	}
	if res := c.Etcdctl(t, "get", "/ew/b", "--rev", rv(2)); !ecFailed(res, compacted) {
		t.Fatalf("get at a compacted revision: %s", res)
	}
	res := ecRun(t, c, 5*time.Second, "watch", "--rev", rv(1), "/ew/a")
	if res.Stdout != "" ||
		!ecFailed(res, "watch was canceled (etcdserver: mvcc: required revision has been compacted)\nError: watch is canceled by the server\n") {
		t.Fatalf("watch from a compacted revision: %s", res)
	}
}
