package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/cadrekv/cadre/tests/framework"
)

// TestForceNewCluster is the recovery from a permanent loss of quorum:
// two of three members are gone for good; the survivor restarts with
// --force-new-cluster, keeps every acknowledged write, serves alone, keeps
// that configuration across a restart, refuses the old members as removed,
// and grows back with member add.
func TestForceNewCluster(t *testing.T) {
	framework.SkipUnlessCadre(t)
	c := framework.NewCluster(t, 3, framework.Options{})
	cli := c.Client(t)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	var acked []string
	var lastRev int64
	for i := 0; i < 50; i++ {
		k := fmt.Sprintf("/fnc/%03d", i)
		resp, err := cli.Put(ctx, k, "v")
		if err != nil {
			t.Fatal(err)
		}
		acked = append(acked, k)
		lastRev = resp.Header.Revision
	}
	survivor, lost1, lost2 := c.Members[0], c.Members[1], c.Members[2]
	// A majority acknowledged the writes; the survivor must hold them all
	// before the others go (see TestMajorityLossSnapshotRecovery).
	waitApplied(t, ctx, framework.NewClient(t, survivor.Endpoint()), lastRev)
	lost1.Kill(t)
	lost2.Kill(t)

	// Without a quorum: writes fail, serializable reads still answer.
	short, cancelShort := context.WithTimeout(ctx, 3*time.Second)
	_, err := framework.NewClient(t, survivor.Endpoint()).Put(short, "/fnc/nope", "x")
	cancelShort()
	if err == nil {
		t.Fatal("a write succeeded with 1 of 3 members")
	}
	if _, err := framework.NewClient(t, survivor.Endpoint()).Get(ctx, "/fnc/000", clientv3.WithSerializable()); err != nil {
		t.Fatalf("serializable read without quorum: %v", err)
	}

	survivor.Kill(t)
	survivor.SetArgs(t, append(survivor.Args(), "--force-new-cluster"))
	survivor.Start(t)
	survivor.WaitHealthy(t, 30*time.Second)
	if !survivor.LogContains("FORCING A NEW CLUSTER") {
		t.Error("no loud warning about forcing a new cluster in the log")
	}
	one := framework.NewClient(t, survivor.Endpoint())
	resp, err := one.Get(ctx, "/fnc/", clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil || resp.Count != int64(len(acked)) {
		t.Fatalf("after --force-new-cluster: %v keys (err %v), want %d", resp, err, len(acked))
	}
	if _, err := one.Put(ctx, "/fnc/after", "alone"); err != nil {
		t.Fatalf("write on the forced one-member cluster: %v", err)
	}
	ml, err := one.MemberList(ctx)
	if err != nil || len(ml.Members) != 1 {
		t.Fatalf("members after force: %v (%v), want 1", ml, err)
	}
	// The audit trail records the two removals the force wrote.
	res := framework.RunProcess(t, framework.Cadrectl(t), []string{"--endpoints", survivor.Endpoint(), "member", "history", "-w", "json"}, nil)
	if res.Code != 0 || strings.Count(res.Stdout, `"by":"force-new-cluster`) != 2 {
		t.Errorf("member history after --force-new-cluster: want two removals by force-new-cluster: %s", res)
	}

	// The change lives in the log: a restart without the flag stays alone.
	survivor.Kill(t)
	survivor.SetArgs(t, framework.WithoutFlag(survivor.Args(), "force-new-cluster"))
	survivor.Start(t)
	survivor.WaitHealthy(t, 30*time.Second)
	if ml, err := framework.NewClient(t, survivor.Endpoint()).MemberList(ctx); err != nil || len(ml.Members) != 1 {
		t.Fatalf("members after a plain restart: %v (%v), want 1", ml, err)
	}

	// An old member coming back with its data is refused as removed.
	lost1.Start(t)
	if code, exited := lost1.Wait(30 * time.Second); !exited || code != 3 {
		t.Fatalf("old member after the forced cluster: exited=%v code=%d, want exit 3 (removed)", exited, code)
	}

	// Grow back: add a fresh member at a new address and start it.
	m4, _ := addAndStart(t, ctx, c, framework.NewClient(t, survivor.Endpoint()), "infra4", false)
	got, err := framework.NewClient(t, m4.Endpoint()).Get(ctx, "/fnc/", clientv3.WithPrefix(), clientv3.WithCountOnly(), clientv3.WithSerializable())
	if err != nil || got.Count != int64(len(acked)+1) {
		t.Fatalf("new member after catch-up: %v keys (err %v), want %d", got, err, len(acked)+1)
	}
}
