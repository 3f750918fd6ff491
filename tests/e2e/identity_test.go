package e2e

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/cadrekv/cadre/tests/framework"
)

// staleDataDirExitCode is cadre's exit code when peers refuse its data dir.
const staleDataDirExitCode = 4

// TestWipedDataDirRefused: a follower whose data dir is wiped and which is
// started again under its old member ID is refused. With its bootstrap
// flags (--initial-cluster-state new) the pre-start check already refuses
// it ("already been bootstrapped", exit 1); with the flags a member added at
// runtime starts with (--initial-cluster-state existing, as `member add`
// prints) it would join: its peers, which know the data dir it had, refuse
// it, and it exits with code 4 and a message naming the member and the fix,
// without panicking. The cluster keeps its leader and term and serves every
// acknowledged write. Removing it and adding it back, as the message says,
// works.
func TestWipedDataDirRefused(t *testing.T) {
	framework.SkipUnlessCadre(t)
	c := framework.NewCluster(t, 3, framework.Options{})
	cli := c.Client(t)
	ctx := ctxFor(t, 2*time.Minute)
	for i := range 20 {
		if _, err := cli.Put(ctx, fmt.Sprintf("/id/%02d", i), "v"); err != nil {
			t.Fatal(err)
		}
	}
	for _, m := range c.Members {
		eventually(t, 15*time.Second, m.Name+" recording its incarnation", func() error {
			if !m.LogContains("recorded this data dir's incarnation") {
				return fmt.Errorf("not yet")
			}
			return nil
		})
	}
	lead := c.Leader(t)
	victim := c.Members[(lead+1)%3]
	leaderBefore, termBefore := c.LeaderStatus(t)

	victim.Stop(t)
	if err := os.RemoveAll(victim.DataDir()); err != nil {
		t.Fatal(err)
	}
	victim.Start(t)
	if code, exited := victim.Wait(20 * time.Second); !exited || code == 0 || !victim.LogContains("already been bootstrapped") {
		t.Fatalf("%s restarted on a wiped data dir with its bootstrap flags: exited %v, code %d; want the pre-start refusal\n%s", victim.Name, exited, code, victim.LogTail(10))
	}
	if err := os.RemoveAll(victim.DataDir()); err != nil {
		t.Fatal(err)
	}
	victim.SetArgs(t, framework.WithFlag(victim.Args(), "initial-cluster-state", "existing"))
	victim.Start(t)
	code, exited := victim.Wait(20 * time.Second)
	if !exited {
		t.Fatalf("%s restarted on a wiped data dir still runs after 20 s\n%s", victim.Name, victim.LogTail(20))
	}
	if code != staleDataDirExitCode || !victim.LogContains("came back with a data dir the cluster does not know") || !victim.LogContains("member remove") {
		t.Fatalf("%s on a wiped data dir: exit %d, want %d with the reason and the fix\n%s", victim.Name, code, staleDataDirExitCode, victim.LogTail(20))
	}
	if strings.Contains(victim.Log(), "panic:") {
		t.Fatalf("%s panicked instead of being refused", victim.Name)
	}
	leaderAfter, termAfter := c.LeaderStatus(t)
	if leaderAfter != leaderBefore || termAfter != termBefore {
		t.Errorf("the refused member disturbed the cluster: leader %x term %d before, %x term %d after", leaderBefore, termBefore, leaderAfter, termAfter)
	}
	live := framework.NewClient(t, c.Members[lead].Endpoint())
	resp, err := live.Get(ctx, "/id/", clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil || resp.Count != 20 {
		t.Fatalf("cluster after the refusal: %v (err %v)", resp, err)
	}

	// The fix the message gives: remove, wipe, add again.
	id := c.MemberIDs(t)[victim.Name]
	eventually(t, 20*time.Second, "removing "+victim.Name, func() error {
		_, err := live.MemberRemove(ctx, id)
		return err
	})
	c.Drop(victim.Name)
	m, _ := addAndStart(t, ctx, c, live, victim.Name+"-again", false)
	c.Append(m)
	got, err := framework.NewClient(t, m.Endpoint()).Get(ctx, "/id/", clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil || got.Count != 20 {
		t.Fatalf("re-added member: %v (err %v)", got, err)
	}
}

// TestOlderCopyRefused: a follower whose data dir is swapped for an older
// copy of itself (same incarnation, fewer entries than it acknowledged)
// and started again stops with exit code 4 and a message naming it and the
// fix, instead of raft's panic ("tocommit is out of range"). The cluster
// keeps its leader and every acknowledged write.
func TestOlderCopyRefused(t *testing.T) {
	framework.SkipUnlessCadre(t)
	c := framework.NewCluster(t, 3, framework.Options{})
	cli := c.Client(t)
	ctx := ctxFor(t, 2*time.Minute)
	put := func(from, to int) {
		t.Helper()
		for i := from; i < to; i++ {
			if _, err := cli.Put(ctx, fmt.Sprintf("/old/%03d", i), "v"); err != nil {
				t.Fatal(err)
			}
		}
	}
	put(0, 20)
	lead := c.Leader(t)
	victim := c.Members[(lead+1)%3]
	victim.Stop(t)
	backup := victim.DataDir() + ".backup"
	if err := os.CopyFS(backup, os.DirFS(victim.DataDir())); err != nil {
		t.Fatal(err)
	}
	victim.Start(t)
	victim.WaitHealthy(t, 30*time.Second)
	put(20, 220)
	membSerializableGet(t, victim, "/old/219", "v", 20*time.Second) // it acknowledged them all
	leaderBefore, termBefore := c.LeaderStatus(t)

	victim.Stop(t)
	if err := os.RemoveAll(victim.DataDir()); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(backup, victim.DataDir()); err != nil {
		t.Fatal(err)
	}
	victim.Start(t)
	code, exited := victim.Wait(30 * time.Second)
	if !exited {
		t.Fatalf("%s restarted on an older copy of its data dir still runs after 30 s\n%s", victim.Name, victim.LogTail(20))
	}
	if code != staleDataDirExitCode || !victim.LogContains("older than what it acknowledged") || !victim.LogContains("member remove") {
		t.Fatalf("%s on an older copy: exit %d, want %d with the reason and the fix\n%s", victim.Name, code, staleDataDirExitCode, victim.LogTail(20))
	}
	if strings.Contains(victim.Log(), "panic:") {
		t.Fatalf("%s panicked instead of stopping with the reason", victim.Name)
	}
	leaderAfter, termAfter := c.LeaderStatus(t)
	if leaderAfter != leaderBefore || termAfter != termBefore {
		t.Errorf("the stale member disturbed the cluster: leader %x term %d before, %x term %d after", leaderBefore, termBefore, leaderAfter, termAfter)
	}
	resp, err := framework.NewClient(t, c.Members[lead].Endpoint()).Get(ctx, "/old/", clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil || resp.Count != 220 {
		t.Fatalf("cluster after the refusal: %v (err %v)", resp, err)
	}
}
