package e2e

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/cadrekv/cadre/tests/framework"
)

// TestMajorityLossSnapshotRecovery is the article's last resort, path (b):
// two of three members are gone for good. Without a quorum, reconfiguration
// and linearizable reads fail (and say why), serializable reads still
// answer, and the survivor still serves a snapshot. The snapshot is
// restored into three fresh members forming a new cluster that holds every
// acknowledged write and takes new ones. (Path (a), --force-new-cluster and
// growing back with member add, is TestForceNewCluster.)
func TestMajorityLossSnapshotRecovery(t *testing.T) {
	framework.SkipUnlessCadre(t)
	c := framework.NewCluster(t, 3, framework.Options{})
	ctx := ctxFor(t, 2*time.Minute)
	cli := c.Client(t)

	// Acknowledged writes, some of them overwritten, so the restore must
	// keep the latest value of each key.
	acked := map[string]string{}
	var lastRev int64
	for i := range 120 {
		k, v := fmt.Sprintf("/ml/%03d", i%80), fmt.Sprintf("v%d", i)
		resp, err := cli.Put(ctx, k, v)
		if err != nil {
			t.Fatalf("put %s: %v", k, err)
		}
		acked[k] = v
		lastRev = resp.Header.Revision
	}

	// A write is acknowledged once a majority holds it, so the member that
	// will survive may still lack the last ones; the article's path starts
	// from a survivor that has them. Wait until it has applied them all.
	survivor := c.Members[0]
	waitApplied(t, ctx, framework.NewClient(t, survivor.Endpoint()), lastRev)
	c.Members[1].Kill(t)
	c.Members[2].Kill(t)
	one := framework.NewClient(t, survivor.Endpoint())

	// Linearizable reads need a quorum: they fail within a bounded time.
	short, cancel := context.WithTimeout(ctx, 4*time.Second)
	_, err := one.Get(short, "/ml/000")
	cancel()
	if err == nil {
		t.Fatal("a linearizable read succeeded with 1 of 3 members")
	}
	// Serializable reads are served from the survivor's own data.
	resp, err := one.Get(ctx, "/ml/", clientv3.WithPrefix(), clientv3.WithSerializable())
	if err != nil || len(resp.Kvs) != len(acked) {
		t.Fatalf("serializable read without quorum: %v (err %v), want %d keys", resp, err, len(acked))
	}

	// Reconfiguration is refused with an error the operator can act on,
	// through the real etcdctl as well as cadrectl.
	for _, args := range [][]string{
		{"member", "add", "newcomer", "--peer-urls=http://127.0.0.1:1"},
		{"member", "remove", fmt.Sprintf("%x", memberID(t, ctx, one, c.Members[1].Name))},
	} {
		res := c.EtcdctlAt(t, []string{survivor.Endpoint()}, "", append([]string{"--command-timeout=5s"}, args...)...)
		if res.Code == 0 {
			t.Fatalf("etcdctl %v succeeded without a quorum: %s", args, res)
		}
		if msg := res.Stderr; !strings.Contains(msg, "etcdserver:") && !strings.Contains(msg, "context deadline exceeded") {
			t.Errorf("etcdctl %v: want an etcd error, got %s", args, res)
		}
		cres := framework.RunProcessIn(t, "", 30*time.Second, framework.Cadrectl(t),
			append([]string{"--endpoints", survivor.Endpoint(), "--command-timeout=5s"}, args...), nil, nil)
		if cres.Code == 0 {
			t.Fatalf("cadrectl %v succeeded without a quorum: %s", args, cres)
		}
		if !strings.Contains(cres.Stderr, "quorum") || !strings.Contains(cres.Stderr, "recover plan") {
			t.Errorf("cadrectl %v: the error should say the quorum is lost and point at `cadrectl recover plan`; got %q", args, cres.Stderr)
		}
	}

	// The survivor serves a snapshot without a quorum.
	file := filepath.Join(t.TempDir(), "survivor.db")
	res := framework.RunProcessIn(t, "", time.Minute, framework.Cadrectl(t),
		[]string{"--endpoints", survivor.Endpoint(), "snapshot", "save", file}, nil, nil)
	if res.Code != 0 {
		t.Fatalf("cadrectl snapshot save from the survivor: %s", res)
	}
	survivor.Kill(t)

	procs, _ := restoreCluster(t, file, 3)
	var eps []string
	for _, p := range procs {
		eps = append(eps, p.Endpoint())
	}
	rcli := framework.NewClient(t, eps...)
	got, err := rcli.Get(ctx, "/ml/", clientv3.WithPrefix())
	if err != nil {
		t.Fatalf("read from the restored cluster: %v", err)
	}
	if len(got.Kvs) != len(acked) {
		t.Fatalf("restored cluster holds %d keys, want %d", len(got.Kvs), len(acked))
	}
	for _, kv := range got.Kvs {
		if want := acked[string(kv.Key)]; string(kv.Value) != want {
			t.Errorf("%s = %q after restore, want the last acknowledged %q", kv.Key, kv.Value, want)
		}
	}
	members, err := rcli.MemberList(ctx)
	if err != nil || len(members.Members) != 3 {
		t.Fatalf("restored cluster members: %v (err %v), want 3", members, err)
	}
	if _, err := rcli.Put(ctx, "/ml/after", "restored"); err != nil {
		t.Fatalf("write to the restored cluster: %v", err)
	}
}

// waitApplied waits (bounded by ctx and 200 tries) until the member behind
// cli has applied revision rev, read serializably from its own data.
func waitApplied(t *testing.T, ctx context.Context, cli *clientv3.Client, rev int64) {
	t.Helper()
	var last int64
	for range 200 {
		resp, err := cli.Get(ctx, "/", clientv3.WithSerializable(), clientv3.WithCountOnly())
		if err == nil {
			if last = resp.Header.Revision; last >= rev {
				return
			}
		}
		time.Sleep(25 * time.Millisecond)
	}
	t.Fatalf("member has applied revision %d, want %d", last, rev)
}

// memberID finds a member's ID by name in the (serializable) member list.
func memberID(t *testing.T, ctx context.Context, cli *clientv3.Client, name string) uint64 {
	t.Helper()
	ml, err := cli.MemberList(ctx, clientv3.WithSerializable())
	if err != nil {
		t.Fatalf("member list: %v", err)
	}
	for _, m := range ml.Members {
		if m.Name == name {
			return m.ID
		}
	}
	t.Fatalf("no member named %s in %v", name, ml.Members)
	return 0
}
