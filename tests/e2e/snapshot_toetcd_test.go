package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/cadrekv/cadre/tests/framework"
)

// TestMigrateToEtcd is TestMigrateFromEtcd the other way: a Cadre cluster
// holds keys (one with several revisions, one deleted, one on a lease, a
// txn, a compaction); the real `etcdctl snapshot save` from it writes a
// file the real etcdutl describes as etcd's own (revision, keys, storage
// version) and restores, plain and with --bump-revision --mark-compacted;
// the real etcd started on the restored data dir serves the same keys,
// values and revisions, now and in history, keeps the lease, and takes the
// next write at the next revision; users, roles and passwords work there.
// Users can leave Cadre.
func TestMigrateToEtcd(t *testing.T) {
	framework.SkipUnlessCadre(t)
	etcdBin := etcdServerOrSkip(t)
	etcdutl := etcdutlOrSkip(t)
	c := framework.NewCluster(t, 3, framework.Options{})
	ctx := ctxFor(t, 2*time.Minute)
	cli := c.Client(t)
	lease := writeMigrationHistory(t, ctx, cli)
	ep := c.Members[0].Endpoint()
	wantNow, _ := etcdctlGet(t, ep, "/m/", "--prefix")
	wantOld, _ := etcdctlGet(t, ep, "/m/", "--prefix", "--rev", "5")

	// Users and roles go along: root, and alice who may read /m/ only.
	for _, step := range []func() error{
		func() error { _, err := cli.UserAdd(ctx, "root", "rootpw"); return err },
		func() error { _, err := cli.UserGrantRole(ctx, "root", "root"); return err },
		func() error { _, err := cli.RoleAdd(ctx, "reader"); return err },
		func() error {
			_, err := cli.RoleGrantPermission(ctx, "reader", "/m/", clientv3.GetPrefixRangeEnd("/m/"), clientv3.PermissionType(clientv3.PermRead))
			return err
		},
		func() error { _, err := cli.UserAdd(ctx, "alice", "alicepw"); return err },
		func() error { _, err := cli.UserGrantRole(ctx, "alice", "reader"); return err },
		func() error { _, err := cli.AuthEnable(ctx); return err },
	} {
		if err := step(); err != nil {
			t.Fatalf("setting up auth: %v", err)
		}
	}
	root := []string{"--user", "root:rootpw"}

	dir := t.TempDir()
	file := filepath.Join(dir, "cadre-snapshot.db")
	res := framework.RunProcess(t, framework.Etcdctl(t), append(root, "--endpoints", ep, "snapshot", "save", file), nil)
	if res.Code != 0 {
		t.Fatalf("etcdctl snapshot save from Cadre: %s", res)
	}

	res = framework.RunProcess(t, etcdutl, []string{"snapshot", "status", file, "-w", "json"}, nil)
	if res.Code != 0 {
		t.Fatalf("etcdutl snapshot status on Cadre's file: %s", res)
	}
	var st snapshotStatusJSON
	if err := json.Unmarshal([]byte(res.Stdout), &st); err != nil {
		t.Fatalf("etcdutl status output %q: %v", res.Stdout, err)
	}
	if st.Revision != wantNow.Header.Revision || st.TotalKey != len(wantNow.Kvs) || st.Version != "3.7.0" {
		t.Fatalf("etcdutl snapshot status %+v; want revision %d, %d keys, version 3.7.0", st, wantNow.Header.Revision, len(wantNow.Kvs))
	}
	// Cadre describes the file the same way.
	if cst := cadreSnapshotStatus(t, file); cst != st {
		t.Errorf("cadre snapshot status %+v, etcdutl %+v", cst, st)
	}

	// Plain restore into etcd: the same answers.
	eep := restoreIntoEtcd(t, etcdBin, etcdutl, file, filepath.Join(dir, "plain"))
	gotNow, rawNow := etcdctlGet(t, eep, "/m/", "--prefix", "--user", "root:rootpw")
	gotOld, rawOld := etcdctlGet(t, eep, "/m/", "--prefix", "--rev", "5", "--user", "root:rootpw")
	if fmt.Sprint(gotNow.Kvs) != fmt.Sprint(wantNow.Kvs) || gotNow.Header.Revision != wantNow.Header.Revision {
		t.Fatalf("etcdctl get on etcd restored from Cadre:\n%s\nwant Cadre's keys and revision %d", rawNow, wantNow.Header.Revision)
	}
	if fmt.Sprint(gotOld.Kvs) != fmt.Sprint(wantOld.Kvs) {
		t.Fatalf("etcdctl get --rev 5 on etcd restored from Cadre:\n%s", rawOld)
	}
	// alice reads /m/ with her password, and nothing else; no user, nothing.
	if a, _ := etcdctlGet(t, eep, "/m/a", "--user", "alice:alicepw"); len(a.Kvs) != 1 || string(a.Kvs[0].Value) != "1" {
		t.Errorf("alice reading /m/a on etcd restored from Cadre: %+v", a)
	}
	for _, args := range [][]string{{"get", "/other", "--user", "alice:alicepw"}, {"get", "/m/a"}} {
		if res := framework.RunProcess(t, framework.Etcdctl(t), append([]string{"--endpoints", eep}, args...), nil); res.Code == 0 {
			t.Errorf("etcdctl %v on etcd restored from Cadre with auth on succeeded: %s", args, res)
		}
	}
	res = framework.RunProcess(t, framework.Etcdctl(t), append(root, "--endpoints", eep, "get", "/m/", "--prefix", "--rev", "2"), nil)
	if res.Code == 0 || !strings.Contains(res.Stderr, "compacted") {
		t.Fatalf("get at a compacted revision on etcd: %s", res)
	}
	res = framework.RunProcess(t, framework.Etcdctl(t), append(root, "--endpoints", eep, "lease", "timetolive", strconv.FormatInt(int64(lease.ID), 16), "--keys"), nil)
	if res.Code != 0 || !strings.Contains(res.Stdout, "granted with TTL(600s)") || !strings.Contains(res.Stdout, "/m/leased") {
		t.Fatalf("lease on etcd after migration: %s", res)
	}
	res = framework.RunProcess(t, framework.Etcdctl(t), append(root, "--endpoints", eep, "put", "/m/new", "x", "-w", "json"), nil)
	if res.Code != 0 || !strings.Contains(res.Stdout, fmt.Sprintf(`"revision":%d`, wantNow.Header.Revision+1)) {
		t.Fatalf("put on etcd after migration: %s", res)
	}

	// etcdutl's --bump-revision --mark-compacted (how Kubernetes restores
	// so that watchers re-list): revisions jump, old ones are compacted.
	bep := restoreIntoEtcd(t, etcdBin, etcdutl, file, filepath.Join(dir, "bumped"), "--bump-revision", "1000", "--mark-compacted")
	bumped, raw := etcdctlGet(t, bep, "/m/", "--prefix", "--user", "root:rootpw")
	if len(bumped.Kvs) != len(wantNow.Kvs) || bumped.Header.Revision < wantNow.Header.Revision+1000 {
		t.Fatalf("etcd restored with --bump-revision 1000: %s; want %d keys at revision ≥ %d", raw, len(wantNow.Kvs), wantNow.Header.Revision+1000)
	}
}

// etcdutlOrSkip returns the real etcdutl binary, or skips the test.
func etcdutlOrSkip(t *testing.T) string {
	t.Helper()
	return toolOrSkip(t, "etcdutl", framework.Etcdutl)
}

// restoreIntoEtcd runs `etcdutl snapshot restore` of file into a data dir
// under dir (with extra flags), starts the real etcd on it at fresh
// loopback ports, waits until it answers, and returns its client URL.
func restoreIntoEtcd(t *testing.T, etcdBin, etcdutl, file, dir string, extra ...string) string {
	t.Helper()
	ports := framework.FreePorts(t, 2)
	client := "http://127.0.0.1:" + strconv.Itoa(ports[0])
	peer := "http://127.0.0.1:" + strconv.Itoa(ports[1])
	data := filepath.Join(dir, "etcd.data")
	res := framework.RunProcess(t, etcdutl, append([]string{"snapshot", "restore", file, "--name", "e1",
		"--initial-cluster", "e1=" + peer, "--initial-advertise-peer-urls", peer, "--data-dir", data}, extra...), nil)
	if res.Code != 0 {
		t.Fatalf("etcdutl snapshot restore %v of Cadre's file: %s", extra, res)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	logf, err := os.Create(filepath.Join(dir, "etcd.log"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { logf.Close() })
	etcd := exec.Command(etcdBin, "--name", "e1", "--data-dir", data,
		"--listen-client-urls", client, "--advertise-client-urls", client,
		"--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer, "--initial-cluster", "e1="+peer)
	etcd.Stdout, etcd.Stderr = logf, logf
	if err := etcd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = etcd.Process.Kill()
		_ = etcd.Wait()
		if t.Failed() {
			b, _ := os.ReadFile(filepath.Join(dir, "etcd.log"))
			t.Logf("etcd log (%s):\n%s", dir, tail(string(b), 30))
		}
	})
	ecli := framework.NewClient(t, client)
	eventually(t, 30*time.Second, "etcd restored from Cadre answering", func() error {
		_, err := ecli.Get(ctxFor(t, 2*time.Second), "probe")
		if err != nil && strings.Contains(err.Error(), "user name is empty") {
			return nil // answering, with auth on
		}
		return err
	})
	return client
}

// tail is the last n lines of s.
func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}
