package e2e

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/cadrekv/cadre/tests/framework"
)

// Names used by the scripted history. The lock and election keys end in the
// hex ID of the etcdctl session's lease, which differs between servers, so
// they are compared after mapping lease IDs to ordinals (shNorm).
const (
	shLockName  = "shlock"
	shElectName = "shelect"
	shProposal  = "leader-1"
)

// TestSameHistoryAsEtcd runs one scripted client history against a real
// etcd and against Cadre and requires the same revisions, the same final
// keyspace and the same watch event stream on both. The history covers
// what moves revisions in non-obvious ways: overwrites, a lease revoke
// deleting two keys (one revision, two events), txns on both branches,
// deletes of present and missing keys, a ranged delete, a compaction, and
// etcdctl lock and elect.
func TestSameHistoryAsEtcd(t *testing.T) {
	framework.SkipUnlessCadre(t)
	etcdEP, _, _ := startEtcd(t)
	c := framework.NewCluster(t, 3, framework.Options{})

	want := shRunHistory(t, shTarget{name: "etcd", endpoints: []string{etcdEP}, cli: framework.NewClient(t, etcdEP)})
	// The script's expectations must hold on etcd itself, or the test is
	// wrong rather than Cadre.
	if err := shRevokeCheck(want); err != nil {
		t.Fatalf("test bug: on etcd itself: %v\nsteps:\n%s", err, strings.Join(want.steps, "\n"))
	}
	if err := shEtcdSanity(want); err != nil {
		t.Fatalf("test bug: on etcd itself: %v\nsteps:\n%s", err, strings.Join(want.steps, "\n"))
	}

	got := shRunHistory(t, shTarget{name: "cadre", endpoints: c.Endpoints(), cli: c.Client(t)})

	if err := shRevokeCheck(got); err != nil {
		t.Errorf("cadre: %v", err)
	}
	if want.finalRev != got.finalRev {
		t.Errorf("final revision: etcd %d, cadre %d", want.finalRev, got.finalRev)
	}
	shCompare(t, "per-step header revisions and outcomes", want.steps, got.steps)
	wn, gn := shNorm(want), shNorm(got)
	shCompare(t, "watch events from revision 1 (rev type key value lease)", wn.events, gn.events)
	shCompare(t, "final key dump (key value create mod version lease)", wn.dump, gn.dump)
}

// shTarget is one server the history runs against.
type shTarget struct {
	name      string
	endpoints []string
	cli       *clientv3.Client
}

// shResult is what one run of the history observed.
type shResult struct {
	name     string
	steps    []string // "step: rev=N detail", in script order
	events   []*clientv3.Event
	dump     []*mvccpb.KeyValue
	finalRev int64

	revokeRev    int64 // header revision of the LeaseRevoke answer
	beforeRevoke int64 // header revision just before the revoke
	leasedKeys   []string
	missingRevs  [2]int64 // header revisions before and after deleting a missing key
}

// shRunHistory opens a watch of the whole keyspace from revision 1, runs the
// script, waits for the watch to reach the final revision and reads the
// final keyspace.
func shRunHistory(t *testing.T, tg shTarget) *shResult {
	t.Helper()
	ctx := ctxFor(t, 90*time.Second)
	cli := tg.cli
	r := &shResult{name: tg.name}

	// The watch is confirmed created before the first write, so it is a
	// synced watcher throughout and the compaction cannot cancel it.
	wctx, wcancel := context.WithCancel(ctx)
	defer wcancel()
	wch := cli.Watch(wctx, "", clientv3.WithFromKey(), clientv3.WithRev(1), clientv3.WithCreatedNotify())
	select {
	case resp, ok := <-wch:
		if !ok || !resp.Created || resp.Err() != nil {
			t.Fatalf("%s: watch not created: ok=%v %+v err=%v", tg.name, ok, resp, resp.Err())
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("%s: watch not created within 10s", tg.name)
	}
	var (
		mu      sync.Mutex
		events  []*clientv3.Event
		lastRev int64
		werr    error
	)
	wdone := make(chan struct{})
	go func() {
		defer close(wdone)
		for resp := range wch {
			mu.Lock()
			if err := resp.Err(); err != nil && werr == nil {
				werr = err
			}
			for _, ev := range resp.Events {
				events = append(events, ev)
				lastRev = max(lastRev, ev.Kv.ModRevision)
			}
			mu.Unlock()
		}
	}()

	// waitWatch waits (bounded) until the watch has delivered everything up
	// to the current revision.
	waitWatch := func() {
		t.Helper()
		g, err := cli.Get(ctx, "sh/none")
		if err != nil {
			t.Fatalf("%s: revision probe: %v", tg.name, err)
		}
		for deadline := time.Now().Add(10 * time.Second); ; {
			mu.Lock()
			done, e := lastRev >= g.Header.Revision, werr
			mu.Unlock()
			if done || e != nil || time.Now().After(deadline) {
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	step := func(name string, rev int64, detail string) {
		revs := "-" // a failed request has no header
		if rev != 0 {
			revs = strconv.FormatInt(rev, 10)
		}
		r.steps = append(r.steps, fmt.Sprintf("%-40s rev=%-3s %s", name+":", revs, detail))
	}
	must := func(what string, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %s: %v", tg.name, what, err)
		}
	}
	headRev := func() int64 {
		t.Helper()
		g, err := cli.Get(ctx, "sh/none")
		must("get (revision probe)", err)
		return g.Header.Revision
	}
	put := func(k, v string, opts ...clientv3.OpOption) int64 {
		t.Helper()
		p, err := cli.Put(ctx, k, v, opts...)
		must("put "+k, err)
		step("put "+k+"="+v, p.Header.Revision, "")
		return p.Header.Revision
	}
	del := func(label, k string, opts ...clientv3.OpOption) (rev, deleted int64) {
		t.Helper()
		d, err := cli.Delete(ctx, k, opts...)
		must("delete "+k, err)
		step(label+" "+k, d.Header.Revision, fmt.Sprintf("deleted=%d", d.Deleted))
		return d.Header.Revision, d.Deleted
	}

	step("start", headRev(), "")
	put("sh/a", "1")
	put("sh/b", "2")
	put("sh/c", "3")
	for i := 1; i <= 3; i++ {
		put(fmt.Sprintf("sh/pfx/%d", i), "p")
	}
	put("sh/a", "1b") // overwrite: version 2, same create revision

	lease, err := cli.Grant(ctx, 600)
	must("lease grant", err)
	step("lease grant", lease.ResponseHeader.Revision, "")
	r.leasedKeys = []string{"sh/l1", "sh/l2"}
	for _, k := range r.leasedKeys {
		put(k, "leased", clientv3.WithLease(lease.ID))
	}
	r.beforeRevoke = headRev()
	rv, err := cli.Revoke(ctx, lease.ID)
	must("lease revoke", err)
	r.revokeRev = rv.Header.Revision
	step("lease revoke (2 keys)", rv.Header.Revision, "")

	tx, err := cli.Txn(ctx).If(clientv3.Compare(clientv3.Value("sh/a"), "=", "1b")).
		Then(clientv3.OpPut("sh/t", "then")).Else(clientv3.OpPut("sh/t", "else")).Commit()
	must("txn 1", err)
	step("txn value(sh/a)=1b", tx.Header.Revision, fmt.Sprintf("succeeded=%v", tx.Succeeded))
	compactRev := tx.Header.Revision
	// Fails on its first compare; the else branch writes two keys at one
	// revision (put then delete).
	tx, err = cli.Txn(ctx).If(clientv3.Compare(clientv3.Version("sh/b"), "=", 5), clientv3.Compare(clientv3.Value("sh/c"), "=", "3")).
		Then(clientv3.OpPut("sh/u", "then")).Else(clientv3.OpPut("sh/u", "else"), clientv3.OpDelete("sh/c")).Commit()
	must("txn 2", err)
	step("txn version(sh/b)=5 && value(sh/c)=3", tx.Header.Revision, fmt.Sprintf("succeeded=%v", tx.Succeeded))

	del("delete", "sh/b")
	r.missingRevs[0] = headRev()
	r.missingRevs[1], _ = del("delete missing", "sh/missing")
	del("delete prefix", "sh/pfx/", clientv3.WithPrefix())

	// A watcher still catching up (unsynced) when a compaction passes its
	// next revision is cancelled with ErrCompacted (etcd does this; a
	// watch from revision 1 starts unsynced), so let it catch up first.
	waitWatch()
	cp, err := cli.Compact(ctx, compactRev, clientv3.WithCompactPhysical())
	must("compact", err)
	step(fmt.Sprintf("compact at %d", compactRev), cp.Header.Revision, "")
	_, err = cli.Get(ctx, "sh/a", clientv3.WithRev(compactRev-1))
	step("get below the compaction", 0, fmt.Sprintf("compacted=%v", errors.Is(err, rpctypes.ErrCompacted)))
	g, err := cli.Get(ctx, "sh/a", clientv3.WithRev(compactRev))
	must("get at the compaction revision", err)
	step("get sh/a at the compaction revision", g.Header.Revision, shKVs(g.Kvs))

	// etcdctl lock with a command: acquire (one put), run `true`, unlock
	// (one delete); the session's lease then expires with no keys.
	res := framework.RunProcessIn(t, "", 30*time.Second, framework.Etcdctl(t),
		[]string{"--endpoints", strings.Join(tg.endpoints, ","), "--dial-timeout", "5s", "--command-timeout", "15s", "lock", shLockName, "--", "true"}, nil, nil)
	if res.Code != 0 || res.TimedOut {
		t.Fatalf("%s: etcdctl lock: %s", tg.name, res)
	}
	step("etcdctl lock -- true", headRev(), "")
	elected := shElect(t, tg.endpoints, shElectName, shProposal)
	step("etcdctl elect, then SIGTERM", headRev(), fmt.Sprintf("printed %d lines", len(elected)))

	put("sh/z1", "after")
	r.finalRev = put("sh/z2", "after")

	waitWatch()
	wcancel()
	select {
	case <-wdone:
	case <-time.After(10 * time.Second):
		t.Fatalf("%s: watch goroutine did not end", tg.name)
	}
	if werr != nil {
		t.Errorf("%s: watch error: %v", tg.name, werr)
	}
	if lastRev < r.finalRev {
		t.Errorf("%s: watch delivered up to revision %d, want %d", tg.name, lastRev, r.finalRev)
	}
	r.events = events

	d, err := cli.Get(ctx, "", clientv3.WithFromKey())
	must("key dump", err)
	r.dump = d.Kvs
	if d.Header.Revision != r.finalRev {
		t.Errorf("%s: key dump at revision %d, want the final %d", tg.name, d.Header.Revision, r.finalRev)
	}
	t.Logf("%s: final revision %d, %d watch events, %d keys", tg.name, r.finalRev, len(r.events), len(r.dump))
	return r
}

// shElect runs `etcdctl elect name proposal`, which campaigns, prints the
// winning key and value and then holds leadership until signalled; SIGTERM
// makes it resign (one delete) and exit 0. Returns the printed lines.
func shElect(t *testing.T, endpoints []string, name, proposal string) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, framework.Etcdctl(t), "--endpoints", strings.Join(endpoints, ","),
		"--dial-timeout", "5s", "elect", name, proposal)
	cmd.WaitDelay = 5 * time.Second
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "ETCDCTL_") && !strings.HasPrefix(kv, "ETCD_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := make(chan string, 16)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	var printed []string
	timeout := time.After(15 * time.Second)
	for len(printed) < 2 { // key, then value
		select {
		case l, ok := <-lines:
			if !ok {
				_ = cmd.Wait()
				t.Fatalf("etcdctl elect ended before printing the leader key: %q\nstderr: %s", printed, stderr.String())
			}
			printed = append(printed, l)
		case <-timeout:
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
			t.Fatalf("etcdctl elect printed %q within 15s, want key and value\nstderr: %s", printed, stderr.String())
		}
	}
	if !strings.HasPrefix(printed[0], name+"/") || printed[1] != proposal {
		t.Fatalf("etcdctl elect printed %q, want %s/<lease> and %s", printed, name, proposal)
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	for range lines { // drain until EOF so Wait can finish
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("etcdctl elect after SIGTERM: %v\nstderr: %s", err, stderr.String())
	}
	return printed
}

// shRevokeCheck: the revoke's two keys were deleted at exactly one
// revision, the revoke's, which holds nothing but those two DELETEs, and
// that revision is the one right after the revoke.
func shRevokeCheck(r *shResult) error {
	revs := map[int64]bool{}
	for _, ev := range r.events {
		for _, k := range r.leasedKeys {
			if ev.Type == mvccpb.DELETE && string(ev.Kv.Key) == k {
				revs[ev.Kv.ModRevision] = true
			}
		}
	}
	var list []int64
	for rev := range revs {
		list = append(list, rev)
	}
	slices.Sort(list)
	if len(list) != 1 {
		return fmt.Errorf("lease revoke of %d keys deleted them at revisions %v (revoke answered at revision %d, previous revision %d); want both DELETEs at one revision",
			len(r.leasedKeys), list, r.revokeRev, r.beforeRevoke)
	}
	rev := list[0]
	var at []string
	for _, ev := range r.events {
		if ev.Kv.ModRevision == rev {
			at = append(at, ev.Type.String()+" "+string(ev.Kv.Key))
		}
	}
	if len(at) != 2 || !strings.HasPrefix(at[0], "DELETE") || !strings.HasPrefix(at[1], "DELETE") {
		return fmt.Errorf("revision %d of the lease revoke holds events %q, want exactly 2 DELETEs", rev, at)
	}
	if rev != r.beforeRevoke+1 || r.revokeRev != rev {
		return fmt.Errorf("lease revoke: deletes at revision %d, revoke answered at %d, previous revision %d; want previous+1 for both", rev, r.revokeRev, r.beforeRevoke)
	}
	return nil
}

// shEtcdSanity checks what the script assumes about etcd's answers.
func shEtcdSanity(r *shResult) error {
	if r.missingRevs[0] != r.missingRevs[1] {
		return fmt.Errorf("deleting a missing key moved the revision %d -> %d", r.missingRevs[0], r.missingRevs[1])
	}
	var lock, elect bool
	for _, ev := range r.events {
		k := string(ev.Kv.Key)
		lock = lock || strings.HasPrefix(k, shLockName+"/")
		elect = elect || strings.HasPrefix(k, shElectName+"/")
	}
	if !lock || !elect {
		return fmt.Errorf("no lock (%v) or election (%v) key in the watch events", lock, elect)
	}
	return nil
}

// shNormalised is a result as comparable lines.
type shNormalised struct{ events, dump []string }

// shNorm renders events and keys as lines, with lease IDs (in the Lease
// field and in lock/election key suffixes) replaced by L1, L2, ... in order
// of first appearance in the watch stream.
func shNorm(r *shResult) shNormalised {
	ords := map[int64]string{}
	ord := func(id int64) string {
		if id == 0 {
			return "0"
		}
		if s, ok := ords[id]; ok {
			return s
		}
		s := "L" + strconv.Itoa(len(ords)+1)
		ords[id] = s
		return s
	}
	key := func(k []byte) string {
		s := string(k)
		for _, p := range []string{shLockName + "/", shElectName + "/"} {
			if suffix, ok := strings.CutPrefix(s, p); ok {
				if id, err := strconv.ParseInt(suffix, 16, 64); err == nil {
					return p + "<lease " + ord(id) + ">"
				}
			}
		}
		return s
	}
	var n shNormalised
	for _, ev := range r.events {
		n.events = append(n.events, fmt.Sprintf("rev=%-3d %-6s %s=%q lease=%s",
			ev.Kv.ModRevision, ev.Type, key(ev.Kv.Key), ev.Kv.Value, ord(ev.Kv.Lease)))
	}
	for _, kv := range r.dump {
		n.dump = append(n.dump, fmt.Sprintf("%s=%q create=%d mod=%d version=%d lease=%s",
			key(kv.Key), kv.Value, kv.CreateRevision, kv.ModRevision, kv.Version, ord(kv.Lease)))
	}
	return n
}

func shKVs(kvs []*mvccpb.KeyValue) string {
	var parts []string
	for _, kv := range kvs {
		parts = append(parts, fmt.Sprintf("%s=%q create=%d mod=%d version=%d", kv.Key, kv.Value, kv.CreateRevision, kv.ModRevision, kv.Version))
	}
	return strings.Join(parts, ", ")
}

// shCompare fails the test with a side-by-side listing when the lines
// differ; "!" marks differing lines.
func shCompare(t *testing.T, what string, etcd, cadre []string) {
	t.Helper()
	if strings.Join(etcd, "\n") == strings.Join(cadre, "\n") {
		return
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s differ (etcd %d lines, cadre %d lines):\n", what, len(etcd), len(cadre))
	for i := range max(len(etcd), len(cadre)) {
		var e, c string
		if i < len(etcd) {
			e = etcd[i]
		}
		if i < len(cadre) {
			c = cadre[i]
		}
		mark := "  "
		if e != c {
			mark = "! "
		}
		fmt.Fprintf(&b, "%s etcd : %s\n%s cadre: %s\n", mark, e, mark, c)
	}
	t.Error(b.String())
}
