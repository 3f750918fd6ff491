package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/cadrekv/cadre/tests/framework"
)

// snapshotStatusJSON is `cadre snapshot status -w json` (etcdutl's fields).
type snapshotStatusJSON struct {
	Hash      uint32 `json:"hash"`
	Revision  int64  `json:"revision"`
	TotalKey  int    `json:"totalKey"`
	TotalSize int64  `json:"totalSize"`
	Version   string `json:"version"`
}

// cadreSnapshotStatus runs `cadre snapshot status FILE -w json`.
func cadreSnapshotStatus(t *testing.T, file string) snapshotStatusJSON {
	t.Helper()
	res := framework.RunProcess(t, framework.Server(t), []string{"snapshot", "status", file, "-w", "json"}, nil)
	if res.Code != 0 {
		t.Fatalf("cadre snapshot status %s: %s", file, res)
	}
	var st snapshotStatusJSON
	if err := json.Unmarshal([]byte(res.Stdout), &st); err != nil {
		t.Fatalf("status output %q: %v", res.Stdout, err)
	}
	return st
}

// restoredMember is one member of a cluster built by `cadre snapshot restore`.
type restoredMember struct {
	name, client, peer, dataDir string
}

// restoreCluster restores file into n fresh data dirs on new ports with a
// new token, starts the members and waits until they are healthy.
func restoreCluster(t *testing.T, file string, n int) ([]*framework.Member, []restoredMember) {
	t.Helper()
	ports := framework.FreePorts(t, 2*n)
	dir := t.TempDir()
	ms := make([]restoredMember, n)
	var initial []string
	for i := range ms {
		ms[i] = restoredMember{
			name:    "restored" + strconv.Itoa(i+1),
			client:  "http://127.0.0.1:" + strconv.Itoa(ports[2*i]),
			peer:    "http://127.0.0.1:" + strconv.Itoa(ports[2*i+1]),
			dataDir: filepath.Join(dir, "restored"+strconv.Itoa(i+1)+".data"),
		}
		initial = append(initial, ms[i].name+"="+ms[i].peer)
	}
	for _, m := range ms {
		res := framework.RunProcess(t, framework.Server(t), []string{"snapshot", "restore", file,
			"--name", m.name, "--initial-cluster", strings.Join(initial, ","), "--initial-cluster-token", "restored-token",
			"--initial-advertise-peer-urls", m.peer, "--data-dir", m.dataDir}, nil)
		if res.Code != 0 || !strings.Contains(res.Stdout, "Restored") {
			t.Fatalf("cadre snapshot restore for %s: %s", m.name, res)
		}
	}
	procs := make([]*framework.Member, n)
	for i, m := range ms {
		procs[i] = framework.StartServer(t, framework.ServerSpec{
			Name: m.name, ClientURL: m.client, DataDir: m.dataDir,
			Args: []string{"--name", m.name, "--data-dir", m.dataDir,
				"--listen-client-urls", m.client, "--advertise-client-urls", m.client,
				"--listen-peer-urls", m.peer, "--initial-advertise-peer-urls", m.peer,
				"--initial-cluster", strings.Join(initial, ","), "--initial-cluster-token", "restored-token"},
		})
	}
	for _, p := range procs {
		p.WaitHealthy(t, 30*time.Second)
	}
	return procs, ms
}

// TestSnapshotSaveRestore: the real `etcdctl snapshot save` (and cadrectl's)
// against a three-member Cadre cluster, `cadre snapshot status` on the
// file, then a restore into three fresh members forming a new cluster that
// holds every key and has a new cluster ID.
func TestSnapshotSaveRestore(t *testing.T) {
	framework.SkipUnlessCadre(t)
	c := framework.NewCluster(t, 3, framework.Options{})
	cli := c.Client(t)
	ctx := ctxFor(t, 2*time.Minute)
	const keys = 300
	big := strings.Repeat("x", 4096)
	for i := range keys {
		if _, err := cli.Put(ctx, fmt.Sprintf("/snap/%04d", i), big+strconv.Itoa(i)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := cli.Put(ctx, "/snap/0000", "rewritten"); err != nil {
		t.Fatal(err)
	}
	before, err := cli.Get(ctx, "/snap/", clientv3.WithPrefix())
	if err != nil {
		t.Fatal(err)
	}
	oldCluster := before.Header.ClusterId

	dir := t.TempDir()
	etcdFile := filepath.Join(dir, "etcdctl.db")
	res := c.EtcdctlAt(t, []string{c.Members[1].Endpoint()}, "", "snapshot", "save", etcdFile)
	if res.Code != 0 || !strings.Contains(res.Stdout, "Snapshot saved at "+etcdFile) || !strings.Contains(res.Stdout, "Server version 3.6.0") {
		t.Fatalf("etcdctl snapshot save: %s", res)
	}
	st := cadreSnapshotStatus(t, etcdFile)
	if st.TotalKey != keys || st.Revision != before.Header.Revision || st.TotalSize < keys*4096 {
		t.Fatalf("status %+v; want %d keys at revision %d", st, keys, before.Header.Revision)
	}
	table := framework.RunProcess(t, framework.Server(t), []string{"snapshot", "status", etcdFile, "-w", "table"}, nil)
	if table.Code != 0 || !strings.Contains(table.Stdout, "TOTAL KEYS") || !strings.Contains(table.Stdout, " "+strconv.Itoa(keys)+" ") {
		t.Fatalf("status -w table: %s", table)
	}

	cadrectlFile := filepath.Join(dir, "cadrectl.db")
	res = framework.RunProcess(t, framework.Cadrectl(t), []string{"--endpoints", c.Members[0].Endpoint(), "snapshot", "save", cadrectlFile}, nil)
	if res.Code != 0 || !strings.Contains(res.Stdout, "Snapshot saved at "+cadrectlFile) {
		t.Fatalf("cadrectl snapshot save: %s", res)
	}
	if st2 := cadreSnapshotStatus(t, cadrectlFile); st2.TotalKey != keys || st2.Revision != st.Revision {
		t.Fatalf("cadrectl file status %+v; want %d keys at %d", st2, keys, st.Revision)
	}
	res = framework.RunProcess(t, framework.Cadrectl(t), []string{"--endpoints", strings.Join(c.Endpoints(), ","), "snapshot", "save", cadrectlFile}, nil)
	if res.Code == 0 || !strings.Contains(res.Stderr, "one selected node") {
		t.Fatalf("cadrectl snapshot save with 3 endpoints: %s", res)
	}

	// A damaged copy is refused by name.
	raw, err := os.ReadFile(etcdFile)
	if err != nil {
		t.Fatal(err)
	}
	cut := filepath.Join(dir, "cut.db")
	if err := os.WriteFile(cut, raw[:len(raw)/2], 0o600); err != nil {
		t.Fatal(err)
	}
	res = framework.RunProcess(t, framework.Server(t), []string{"snapshot", "status", cut}, nil)
	if res.Code == 0 || !strings.Contains(res.Stderr, "truncated") {
		t.Fatalf("status of a truncated file: %s", res)
	}

	c.Close() // the old cluster is gone for good
	procs, _ := restoreCluster(t, etcdFile, 3)
	var eps []string
	for _, p := range procs {
		eps = append(eps, p.Endpoint())
	}
	rcli := framework.NewClient(t, eps...)
	after, err := rcli.Get(ctx, "/snap/", clientv3.WithPrefix())
	if err != nil {
		t.Fatal(err)
	}
	if len(after.Kvs) != keys || after.Header.Revision != before.Header.Revision {
		t.Fatalf("restored cluster: %d keys at revision %d; want %d at %d", len(after.Kvs), after.Header.Revision, keys, before.Header.Revision)
	}
	for i, kv := range after.Kvs {
		b := before.Kvs[i]
		if string(kv.Key) != string(b.Key) || string(kv.Value) != string(b.Value) || kv.ModRevision != b.ModRevision || kv.Version != b.Version {
			t.Fatalf("key %s: got %q mod %d ver %d; want %q mod %d ver %d", kv.Key, kv.Value, kv.ModRevision, kv.Version, b.Value, b.ModRevision, b.Version)
		}
	}
	if after.Header.ClusterId == oldCluster {
		t.Fatalf("restored cluster kept the old cluster ID %x", oldCluster)
	}
	ml, err := rcli.MemberList(ctx)
	if err != nil || len(ml.Members) != 3 {
		t.Fatalf("member list: %v %v", ml, err)
	}
	for _, m := range ml.Members {
		if !strings.HasPrefix(m.Name, "restored") || len(m.ClientURLs) != 1 {
			t.Fatalf("member %+v has not published itself", m)
		}
	}
	if _, err := rcli.Put(ctx, "/snap/new", "after restore"); err != nil {
		t.Fatalf("write to the restored cluster: %v", err)
	}
	// A restart from the restored data dirs keeps the data and membership.
	procs[2].Stop(t)
	procs[2].Restart(t)
	one := framework.NewClient(t, procs[2].Endpoint())
	if got, err := one.Get(ctx, "/snap/new"); err != nil || len(got.Kvs) != 1 || got.Header.ClusterId != after.Header.ClusterId {
		t.Fatalf("after restart: %v %v", got, err)
	}
}

// probeTB turns a t.Fatal inside a framework helper into a message, so a
// test can skip when an optional tool cannot be built.
type probeTB struct {
	testing.TB
	msg string
}

func (p *probeTB) Helper()                   {}
func (p *probeTB) Fatal(args ...any)         { p.msg = fmt.Sprint(args...); runtime.Goexit() }
func (p *probeTB) Fatalf(f string, a ...any) { p.msg = fmt.Sprintf(f, a...); runtime.Goexit() }

// etcdServerOrSkip returns the real etcd binary, or skips the test.
func etcdServerOrSkip(t *testing.T) string {
	t.Helper()
	return toolOrSkip(t, "the etcd server", framework.EtcdServer)
}

// toolOrSkip returns the etcd tool get builds (from the module proxy, once),
// or skips the test when it cannot be built here.
func toolOrSkip(t *testing.T, what string, get func(testing.TB) string) string {
	t.Helper()
	p := &probeTB{TB: t}
	var bin string
	done := make(chan struct{})
	go func() {
		defer close(done)
		bin = get(p)
	}()
	<-done
	if bin == "" {
		t.Skipf("%s %s is not available: %s", what, framework.EtcdVersion, p.msg)
	}
	return bin
}

type snapGetJSON struct {
	Header struct {
		Revision int64 `json:"revision"`
	} `json:"header"`
	Kvs []struct {
		Key            []byte `json:"key"`
		Value          []byte `json:"value"`
		CreateRevision int64  `json:"create_revision"`
		ModRevision    int64  `json:"mod_revision"`
		Version        int64  `json:"version"`
		Lease          int64  `json:"lease"`
	} `json:"kvs"`
}

// etcdctlGet runs `etcdctl get` with -w json and decodes it.
func etcdctlGet(t *testing.T, endpoint string, args ...string) (snapGetJSON, string) {
	t.Helper()
	full := append([]string{"--endpoints", endpoint, "--dial-timeout", "5s", "--command-timeout", "15s", "get", "-w", "json"}, args...)
	res := framework.RunProcess(t, framework.Etcdctl(t), full, nil)
	if res.Code != 0 {
		t.Fatalf("etcdctl get %v: %s", args, res)
	}
	var g snapGetJSON
	if err := json.Unmarshal([]byte(res.Stdout), &g); err != nil {
		t.Fatalf("etcdctl get output %q: %v", res.Stdout, err)
	}
	return g, res.Stdout
}

// TestMigrateFromEtcd: a real etcd holds keys (one with several revisions,
// one deleted, one on a lease, a compaction); `etcdctl snapshot save` from
// it is restored into Cadre, and `etcdctl get` on Cadre returns the same
// keys, values and revisions, now and in history; the lease survives.
func TestMigrateFromEtcd(t *testing.T) {
	framework.SkipUnlessCadre(t)
	client, dir, stopEtcd := startEtcd(t)
	ctx := ctxFor(t, 2*time.Minute)
	ecli := framework.NewClient(t, client)
	lease := writeMigrationHistory(t, ctx, ecli)
	wantNow, _ := etcdctlGet(t, client, "/m/", "--prefix")
	wantOld, _ := etcdctlGet(t, client, "/m/", "--prefix", "--rev", "5")

	file := filepath.Join(dir, "etcd-snapshot.db")
	res := framework.RunProcess(t, framework.Etcdctl(t), []string{"--endpoints", client, "snapshot", "save", file}, nil)
	if res.Code != 0 {
		t.Fatalf("etcdctl snapshot save from etcd: %s", res)
	}
	stopEtcd()

	st := cadreSnapshotStatus(t, file)
	if st.Revision != wantNow.Header.Revision || st.TotalKey != len(wantNow.Kvs) || st.Version == "" {
		t.Fatalf("status of the etcd snapshot %+v; want revision %d, %d keys, a storage version", st, wantNow.Header.Revision, len(wantNow.Kvs))
	}
	procs, _ := restoreCluster(t, file, 1)
	ep := procs[0].Endpoint()
	gotNow, rawNow := etcdctlGet(t, ep, "/m/", "--prefix")
	gotOld, rawOld := etcdctlGet(t, ep, "/m/", "--prefix", "--rev", "5")
	if fmt.Sprint(gotNow.Kvs) != fmt.Sprint(wantNow.Kvs) || gotNow.Header.Revision != wantNow.Header.Revision {
		t.Fatalf("etcdctl get on Cadre:\n%s\nwant the etcd answer's keys and revision %d", rawNow, wantNow.Header.Revision)
	}
	if fmt.Sprint(gotOld.Kvs) != fmt.Sprint(wantOld.Kvs) {
		t.Fatalf("etcdctl get --rev 5 on Cadre:\n%s", rawOld)
	}
	res = framework.RunProcess(t, framework.Etcdctl(t), []string{"--endpoints", ep, "get", "/m/", "--prefix", "--rev", "2"}, nil)
	if res.Code == 0 || !strings.Contains(res.Stderr, "compacted") {
		t.Fatalf("get at a compacted revision: %s", res)
	}
	res = framework.RunProcess(t, framework.Etcdctl(t), []string{"--endpoints", ep, "lease", "timetolive", strconv.FormatInt(int64(lease.ID), 16), "--keys"}, nil)
	if res.Code != 0 || !strings.Contains(res.Stdout, "granted with TTL(600s)") || !strings.Contains(res.Stdout, "/m/leased") {
		t.Fatalf("lease after migration: %s", res)
	}
	// The migrated cluster takes writes at the next revision.
	res = framework.RunProcess(t, framework.Etcdctl(t), []string{"--endpoints", ep, "put", "/m/new", "x", "-w", "json"}, nil)
	if res.Code != 0 || !strings.Contains(res.Stdout, fmt.Sprintf(`"revision":%d`, wantNow.Header.Revision+1)) {
		t.Fatalf("put after migration: %s", res)
	}
}

// startEtcd runs one real etcd member on loopback for a migration test and
// waits until it answers; stop kills it (also at the end of the test).
func startEtcd(t *testing.T) (client, dir string, stop func()) {
	t.Helper()
	etcdBin := etcdServerOrSkip(t)
	ports := framework.FreePorts(t, 2)
	client = "http://127.0.0.1:" + strconv.Itoa(ports[0])
	peer := "http://127.0.0.1:" + strconv.Itoa(ports[1])
	dir = t.TempDir()
	logf, err := os.Create(filepath.Join(dir, "etcd.log"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { logf.Close() })
	etcd := exec.Command(etcdBin, "--name", "e1", "--data-dir", filepath.Join(dir, "etcd.data"),
		"--listen-client-urls", client, "--advertise-client-urls", client,
		"--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer, "--initial-cluster", "e1="+peer)
	etcd.Stdout, etcd.Stderr = logf, logf
	if err := etcd.Start(); err != nil {
		t.Fatal(err)
	}
	stopped := false
	stop = func() {
		if !stopped {
			stopped = true
			_ = etcd.Process.Kill()
			_ = etcd.Wait()
		}
	}
	t.Cleanup(stop)
	cli := framework.NewClient(t, client)
	eventually(t, 30*time.Second, "etcd answering", func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_, err := cli.Get(ctx, "probe")
		return err
	})
	return client, dir, stop
}

// TestMigrateAuthFromEtcd: users, roles, permissions and the auth switch of
// an etcd snapshot carry over to Cadre; passwords keep working.
func TestMigrateAuthFromEtcd(t *testing.T) {
	framework.SkipUnlessCadre(t)
	client, dir, stopEtcd := startEtcd(t)
	etcdctl := func(ep string, args ...string) framework.Result {
		return framework.RunProcess(t, framework.Etcdctl(t), append([]string{"--endpoints", ep}, args...), nil)
	}
	for _, args := range [][]string{
		{"user", "add", "root", "--new-user-password", rootPW},
		{"auth", "enable"},
		{"--user", "root:" + rootPW, "role", "add", "app"},
		{"--user", "root:" + rootPW, "role", "grant-permission", "app", "readwrite", "/app/", "--prefix"},
		{"--user", "root:" + rootPW, "user", "add", "alice", "--new-user-password", alicePW},
		{"--user", "root:" + rootPW, "user", "grant-role", "alice", "app"},
		{"--user", "alice:" + alicePW, "put", "/app/x", "from-etcd"},
	} {
		if res := etcdctl(client, args...); res.Code != 0 {
			t.Fatalf("etcdctl %v on etcd: %s", args, res)
		}
	}
	file := filepath.Join(dir, "auth-snapshot.db")
	if res := etcdctl(client, "--user", "root:"+rootPW, "snapshot", "save", file); res.Code != 0 {
		t.Fatalf("snapshot save: %s", res)
	}
	stopEtcd()
	procs, _ := restoreCluster(t, file, 1)
	ep := procs[0].Endpoint()
	if res := etcdctl(ep, "--user", "alice:"+alicePW, "get", "/app/x", "--print-value-only"); res.Code != 0 || strings.TrimSpace(res.Stdout) != "from-etcd" {
		t.Fatalf("alice on Cadre after migration: %s", res)
	}
	if res := etcdctl(ep, "--user", "alice:"+alicePW, "put", "/etc/x", "1"); res.Code == 0 || !strings.Contains(res.Stderr, "permission denied") {
		t.Fatalf("alice outside her prefix after migration: %s", res)
	}
	if res := etcdctl(ep, "get", "/app/x"); res.Code == 0 || !strings.Contains(res.Stderr, "user name is empty") {
		t.Fatalf("anonymous read after migration (auth should stay on): %s", res)
	}
	if res := etcdctl(ep, "--user", "root:"+rootPW, "role", "get", "app"); res.Code != 0 || !strings.Contains(res.Stdout, "(prefix /app/)") {
		t.Fatalf("role after migration: %s", res)
	}
}

// writeMigrationHistory writes the history the migration tests carry from
// one server to the other: a key, one with several revisions, one deleted,
// a compaction at 3, a key on a 600 s lease, and a txn of two puts. It
// returns the lease.
func writeMigrationHistory(t *testing.T, ctx context.Context, cli *clientv3.Client) *clientv3.LeaseGrantResponse {
	t.Helper()
	mustPut := func(k, v string, opts ...clientv3.OpOption) {
		t.Helper()
		if _, err := cli.Put(ctx, k, v, opts...); err != nil {
			t.Fatal(err)
		}
	}
	mustPut("/m/a", "1")
	mustPut("/m/history", "v1")
	mustPut("/m/history", "v2")
	mustPut("/m/gone", "x")
	mustPut("/m/history", "v3")
	if _, err := cli.Compact(ctx, 3); err != nil {
		t.Fatal(err)
	}
	mustPut("/m/history", "v4")
	if _, err := cli.Delete(ctx, "/m/gone"); err != nil {
		t.Fatal(err)
	}
	lease, err := cli.Grant(ctx, 600)
	if err != nil {
		t.Fatal(err)
	}
	mustPut("/m/leased", "l", clientv3.WithLease(lease.ID))
	if _, err := cli.Txn(ctx).Then(clientv3.OpPut("/m/t1", "a"), clientv3.OpPut("/m/t2", "b")).Commit(); err != nil {
		t.Fatal(err)
	}
	return lease
}
