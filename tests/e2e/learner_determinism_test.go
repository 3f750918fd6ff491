package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/cadrekv/cadre/tests/framework"
)

// ldSnapshotCount is --snapshot-count of every member: small, so the log is
// compacted (keeping ldCatchup entries) many times during the test.
const (
	ldSnapshotCount = 100
	ldCatchup       = 50
)

// ldLogMarks are the log messages of the server under test that show a
// snapshot taken (log compacted) and a snapshot from the leader applied.
// The test also runs on etcd (CADRE_E2E_SERVER), which words them its way.
func ldLogMarks() (saved, applying, applied string) {
	if framework.IsCadre() {
		return `"msg":"saved snapshot"`, "installing snapshot", "installed snapshot"
	}
	return `"msg":"triggering snapshot"`, `"msg":"applying snapshot"`, `"msg":"applied snapshot"`
}

// TestLearnersJoinDeterministically: under mixed traffic with lease churn,
// a learner that catches up by replaying the log (A, added before the first
// snapshot) and one that catches up from a snapshot (B, added after the log
// was compacted several times) end up, once promoted, with exactly the
// voters' key history: same revision, same HashKV, same keys; no member
// stops and the periodic corruption check raises nothing.
func TestLearnersJoinDeterministically(t *testing.T) {
	flags := []string{
		"--snapshot-count", fmt.Sprint(ldSnapshotCount),
		"--snapshot-catchup-entries", fmt.Sprint(ldCatchup),
		"--corrupt-check-time", "2s",
	}
	c := framework.NewCluster(t, 3, framework.Options{ExtraFlags: flags})
	voters := c.Endpoints() // the original members: never learners
	cli := c.Client(t)
	ctx := ctxFor(t, 2*time.Minute)

	// Phase 1: a short burst of the same traffic, so that learner A's log
	// replay holds lease grants, puts and revokes, while the log is still
	// whole (fewer than --snapshot-count entries).
	ldRun(t, cli, "p1", 2, 20*time.Second).Wait(t)
	if idx := ldMaxRaftIndex(t, c, voters); idx >= ldSnapshotCount-20 {
		t.Fatalf("setup: raft index %d after phase 1 is too close to --snapshot-count %d for a log-replay join", idx, ldSnapshotCount)
	}
	if _, err := cli.Put(ctx, "/ld/marker-a", "x"); err != nil {
		t.Fatal(err)
	}
	a, addA := ldAddLearner(t, c, voters, "learnerA", flags)
	membSerializableGet(t, a, "/ld/marker-a", "x", 30*time.Second)
	savedMark, applyingMark, appliedMark := ldLogMarks()
	if a.LogContains(applyingMark) || a.LogContains(appliedMark) {
		t.Fatalf("setup: learner A was sent a snapshot; it was meant to catch up by log replay\n%s", a.LogTail(20))
	}
	ldPromote(t, c, voters, "learner A", addA.ID)

	// Phase 2: traffic in the background until stopped (bounded anyway).
	tr := ldRun(t, cli, "p2", 5000, 40*time.Second)
	defer tr.Stop(t)

	// Wait until the log has been compacted several times, so a new member
	// cannot be sent the entries it lacks.
	eventually(t, 30*time.Second, "log compacted several times", func() error {
		if idx := ldMaxRaftIndex(t, c, voters); idx < 6*ldSnapshotCount {
			return fmt.Errorf("raft index %d, want >= %d", idx, 6*ldSnapshotCount)
		}
		for _, m := range c.Members[:3] {
			if n := strings.Count(m.Log(), savedMark); n < 3 {
				return fmt.Errorf("%s logged %s %d times, want >= 3", m.Name, savedMark, n)
			}
		}
		return nil
	})
	b, addB := ldAddLearner(t, c, voters, "learnerB", flags)
	eventually(t, 30*time.Second, "learner B catching up from a snapshot", func() error {
		if !b.LogContains(appliedMark) {
			return fmt.Errorf("no %s in %s", appliedMark, b.LogPath())
		}
		return nil
	})
	ldPromote(t, c, voters, "learner B", addB.ID)
	// A little traffic with B as a voter, then stop.
	time.Sleep(time.Second)
	ok, failed := tr.Stop(t)
	t.Logf("phase 2 traffic: %d requests succeeded, %d failed", ok, failed)

	// Short-TTL leases expire after the traffic stops and move the
	// revision; wait (bounded) until no lease is left.
	ldWaitNoLeases(t, cli)
	rev := ldSameRevision(t, c)

	// Compare every member with the first voter.
	ref := c.Members[0]
	refHash, refDump := ldHashAndDump(t, ref, rev)
	for _, m := range c.Members[1:] {
		h, dump := ldHashAndDump(t, m, rev)
		if h != refHash {
			t.Errorf("HashKV at revision %d: %s has %s, %s has %s", rev, m.Name, h, ref.Name, refHash)
		}
		if d := ldDumpDiff(refDump, dump); d != "" {
			t.Errorf("serializable key dump of %s differs from %s's:\n%s", m.Name, ref.Name, d)
		}
	}
	for _, m := range c.Members {
		if !m.Running() {
			t.Errorf("%s is not running (exit code %d)\n%s", m.Name, m.ExitCode(), m.LogTail(15))
		}
		if lines := ldCorruptLines(m.Log()); len(lines) > 0 {
			t.Errorf("%s logged corruption:\n%s", m.Name, strings.Join(lines, "\n"))
		}
	}
	res := c.EtcdctlAt(t, voters, "", "alarm", "list")
	if res.Code != 0 || strings.TrimSpace(res.Stdout) != "" {
		t.Errorf("alarm list after the run, want none: %s", res)
	}
}

// ldAddLearner adds a learner with `etcdctl member add --learner` and starts
// it with the printed ETCD_* settings plus flags; it joins c.
func ldAddLearner(t *testing.T, c *framework.Cluster, voters []string, name string, flags []string) (*framework.Member, framework.MemberAdded) {
	t.Helper()
	ports := framework.FreePorts(t, 2)
	peer, client := membURL(ports[0]), membURL(ports[1])
	out := ldCtlRetry(t, c, voters, []string{"unhealthy cluster"}, "member", "add", name, "--learner", "--peer-urls="+peer)
	added, err := framework.ParseMemberAdd(out)
	if err != nil {
		t.Fatal(err)
	}
	if !added.Learner {
		t.Fatalf("member add --learner: not a learner: %+v", added)
	}
	m := c.AddMemberProcess(t, name, append(membJoinFlags(filepath.Join(c.Dir(), name+".data"), peer, client), flags...), added.EnvList())
	c.Append(m)
	// A member that finds its data differs from its peers' stops: say so
	// plainly rather than only "exited before becoming healthy".
	for deadline := time.Now().Add(30 * time.Second); !m.Healthy(); time.Sleep(100 * time.Millisecond) {
		if !m.Running() {
			t.Fatalf("%s exited (code %d) while catching up; its corruption reports:\n%s\n%s",
				name, m.ExitCode(), strings.Join(ldCorruptLines(m.Log()), "\n"), m.LogTail(10))
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not healthy within 30s\n%s", name, m.LogTail(20))
		}
	}
	return m, added
}

// ldPromote promotes a learner with `etcdctl member promote`, retrying
// (bounded) while it is refused as not yet caught up.
func ldPromote(t *testing.T, c *framework.Cluster, voters []string, what string, id uint64) {
	t.Helper()
	start := time.Now()
	ldCtlRetry(t, c, voters, []string{"in sync with leader", "unhealthy cluster"}, "member", "promote", fmt.Sprintf("%x", id))
	t.Logf("%s promoted after %v", what, time.Since(start).Round(time.Millisecond))
}

// ldCtlRetry runs etcdctl against eps until it exits 0, retrying for at
// most 30 s while stderr contains one of retryOn; other errors fail at once.
func ldCtlRetry(t *testing.T, c *framework.Cluster, eps []string, retryOn []string, args ...string) string {
	t.Helper()
	var last framework.Result
	deadline := time.Now().Add(30 * time.Second)
	for attempt := 0; attempt < 150 && time.Now().Before(deadline); attempt++ {
		last = c.EtcdctlAt(t, eps, "", args...)
		if last.Code == 0 && !last.TimedOut {
			return last.Stdout
		}
		if !slices.ContainsFunc(retryOn, func(s string) bool { return strings.Contains(last.Stderr, s) }) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("etcdctl %q: %s", args, last)
	return ""
}

// ldTraffic is background client traffic: lease churn (grant, put two
// keys, revoke), leases left to expire, puts, deletes and txns. Every
// goroutine stops after its rounds, at its deadline, or when stopped.
type ldTraffic struct {
	stop     chan struct{}
	stopOnce sync.Once
	wg       sync.WaitGroup
	ok, errs atomic.Int64
}

func ldRun(t *testing.T, cli *clientv3.Client, phase string, rounds int, d time.Duration) *ldTraffic {
	t.Helper()
	tr := &ldTraffic{stop: make(chan struct{})}
	deadline := time.Now().Add(d)
	more := func(i int) bool {
		select {
		case <-tr.stop:
			return false
		default:
		}
		return i < rounds && time.Now().Before(deadline)
	}
	// op runs one request; failures are counted and not retried (besides
	// revokes, below), with a pause so a refusing cluster is not spun on.
	op := func(f func(ctx context.Context) error) bool {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		err := f(ctx)
		cancel()
		if err != nil {
			tr.errs.Add(1)
			time.Sleep(20 * time.Millisecond)
			return false
		}
		tr.ok.Add(1)
		return true
	}
	goLoop := func(body func(i int)) {
		tr.wg.Add(1)
		go func() {
			defer tr.wg.Done()
			for i := 0; more(i); i++ {
				body(i)
			}
		}()
	}
	for g := range 4 {
		goLoop(func(i int) {
			var id clientv3.LeaseID
			if !op(func(ctx context.Context) error {
				l, err := cli.Grant(ctx, 10)
				if err == nil {
					id = l.ID
				}
				return err
			}) {
				return
			}
			for _, k := range []string{"a", "b"} {
				key := fmt.Sprintf("/ld/%s/lc/%d/%04d/%s", phase, g, i, k)
				op(func(ctx context.Context) error { _, err := cli.Put(ctx, key, "v", clientv3.WithLease(id)); return err })
			}
			// A revoke that failed would leave keys until the TTL; retry.
			for range 3 {
				if op(func(ctx context.Context) error { _, err := cli.Revoke(ctx, id); return err }) {
					break
				}
			}
		})
	}
	// Leases left to expire (the leader revokes them), one at a time.
	goLoop(func(i int) {
		var id clientv3.LeaseID
		if op(func(ctx context.Context) error {
			l, err := cli.Grant(ctx, 2)
			if err == nil {
				id = l.ID
			}
			return err
		}) {
			for _, k := range []string{"a", "b"} {
				key := fmt.Sprintf("/ld/%s/exp/%04d/%s", phase, i, k)
				op(func(ctx context.Context) error { _, err := cli.Put(ctx, key, "v", clientv3.WithLease(id)); return err })
			}
		}
		time.Sleep(150 * time.Millisecond)
	})
	for g := range 2 {
		goLoop(func(i int) {
			key := func(n int) string { return fmt.Sprintf("/ld/%s/kv/%d/%02d", phase, g, n%20) }
			switch i % 4 {
			case 0, 1:
				op(func(ctx context.Context) error { _, err := cli.Put(ctx, key(i), fmt.Sprint(i)); return err })
			case 2:
				op(func(ctx context.Context) error { _, err := cli.Delete(ctx, key(i+5)); return err })
			case 3:
				op(func(ctx context.Context) error {
					_, err := cli.Txn(ctx).If(clientv3.Compare(clientv3.Version(key(i)), ">", 0)).
						Then(clientv3.OpPut(key(i), "txn"), clientv3.OpDelete(key(i+3))).
						Else(clientv3.OpPut(key(i), "new")).Commit()
					return err
				})
			}
		})
	}
	return tr
}

// Wait waits (bounded) for every goroutine to end by itself.
func (tr *ldTraffic) Wait(t *testing.T) {
	t.Helper()
	done := make(chan struct{})
	go func() { tr.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("traffic did not end within 30s")
	}
}

// Stop stops the traffic, waits for it and returns its counts.
func (tr *ldTraffic) Stop(t *testing.T) (ok, failed int64) {
	t.Helper()
	tr.stopOnce.Do(func() { close(tr.stop) })
	tr.Wait(t)
	return tr.ok.Load(), tr.errs.Load()
}

// ldMaxRaftIndex is the highest raft index the given members report.
func ldMaxRaftIndex(t *testing.T, c *framework.Cluster, eps []string) uint64 {
	t.Helper()
	cli := framework.NewClient(t, eps...)
	var idx uint64
	for _, ep := range eps {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		st, err := cli.Status(ctx, ep)
		cancel()
		if err == nil {
			idx = max(idx, st.RaftIndex)
		}
	}
	return idx
}

// ldWaitNoLeases waits (bounded; failing softly so the comparisons below
// still report) until the cluster holds no lease.
func ldWaitNoLeases(t *testing.T, cli *clientv3.Client) {
	t.Helper()
	var n int
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		l, err := cli.Leases(ctx)
		cancel()
		if err == nil {
			if n = len(l.Leases); n == 0 {
				return
			}
		}
	}
	t.Errorf("%d leases still exist 20s after the traffic stopped", n)
}

// ldSameRevision waits (bounded) until every member reports the same
// revision twice in a row and returns it; on timeout it reports the
// revisions and returns the first member's.
func ldSameRevision(t *testing.T, c *framework.Cluster) int64 {
	t.Helper()
	revs := func() map[string]int64 {
		out := map[string]int64{}
		for _, m := range c.Members {
			cli := framework.NewClient(t, m.Endpoint())
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			st, err := cli.Status(ctx, m.Endpoint())
			cancel()
			_ = cli.Close()
			if err != nil {
				out[m.Name] = -1
				continue
			}
			out[m.Name] = st.Header.Revision
		}
		return out
	}
	allEqual := func(r map[string]int64) bool {
		for _, v := range r {
			if v < 0 || v != r[c.Members[0].Name] {
				return false
			}
		}
		return true
	}
	var prev, cur map[string]int64
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(300 * time.Millisecond) {
		cur = revs()
		if allEqual(cur) && prev != nil && allEqual(prev) && prev[c.Members[0].Name] == cur[c.Members[0].Name] {
			return cur[c.Members[0].Name]
		}
		prev = cur
	}
	t.Errorf("members do not settle on one revision within 15s: %v", cur)
	return cur[c.Members[0].Name]
}

// ldHashAndDump is m's HashKV at rev and its whole keyspace read
// serializably (from m itself).
func ldHashAndDump(t *testing.T, m *framework.Member, rev int64) (string, []*mvccpb.KeyValue) {
	t.Helper()
	cli := framework.NewClient(t, m.Endpoint())
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	h, err := cli.HashKV(ctx, m.Endpoint(), rev)
	hash := ""
	if err != nil {
		hash = "error: " + err.Error()
	} else {
		hash = fmt.Sprintf("hash=%08x compact=%d", h.Hash, h.CompactRevision)
	}
	d, err := cli.Get(ctx, "", clientv3.WithFromKey(), clientv3.WithSerializable())
	if err != nil {
		t.Errorf("key dump of %s: %v", m.Name, err)
		return hash, nil
	}
	return hash, d.Kvs
}

// ldDumpDiff lists (at most 20) keys that differ between two dumps.
func ldDumpDiff(want, got []*mvccpb.KeyValue) string {
	line := func(kv *mvccpb.KeyValue) string {
		return fmt.Sprintf("%q create=%d mod=%d version=%d lease=%x", kv.Value, kv.CreateRevision, kv.ModRevision, kv.Version, kv.Lease)
	}
	w, g := map[string]string{}, map[string]string{}
	var keys []string
	for _, kv := range want {
		w[string(kv.Key)] = line(kv)
		keys = append(keys, string(kv.Key))
	}
	for _, kv := range got {
		g[string(kv.Key)] = line(kv)
		if _, ok := w[string(kv.Key)]; !ok {
			keys = append(keys, string(kv.Key))
		}
	}
	slices.Sort(keys)
	var out []string
	n := 0
	for _, k := range keys {
		if w[k] == g[k] {
			continue
		}
		n++
		if len(out) < 20 {
			out = append(out, fmt.Sprintf("  %s\n    want %s\n    got  %s", k, ldOr(w[k], "(absent)"), ldOr(g[k], "(absent)")))
		}
	}
	if n == 0 {
		return ""
	}
	return fmt.Sprintf("%d keys differ (%d vs %d keys); first ones:\n%s", n, len(want), len(got), strings.Join(out, "\n"))
}

func ldOr(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// ldCorruptLines are the log lines reporting corruption. Lines that only
// name the checks (the flag echo, "check enabled", "check passed") are not
// reports: a line counts if it mentions corruption and is a warning or
// worse, or says "corruption detected", "mismatch" or raises CORRUPT.
func ldCorruptLines(log string) []string {
	var out []string
	for _, l := range strings.Split(log, "\n") {
		ll := strings.ToLower(l)
		if strings.HasPrefix(l, "==== framework:") || !strings.Contains(ll, "corrupt") {
			continue
		}
		var rec struct{ Level string }
		_ = json.Unmarshal([]byte(l), &rec) // not JSON (e.g. a panic): no level
		bad := slices.Contains([]string{"warn", "error", "dpanic", "panic", "fatal"}, rec.Level) ||
			strings.Contains(ll, "corruption detected") || strings.Contains(ll, "mismatch") ||
			strings.Contains(l, "CORRUPT")
		if bad {
			out = append(out, l)
		}
	}
	return out
}
