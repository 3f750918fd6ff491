package robustness

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/cadrekv/cadre/tests/framework"
)

// TestDiskFullFailStop puts one follower's data dir on a small tmpfs of its
// own (the test mounts it: root only, skipped otherwise) and fills it while
// a client writes. The follower must stop (its backend cannot grow: ENOSPC)
// instead of serving anything it could not store, the cluster must go on,
// and once space is freed the follower must restart, catch up and agree
// with the others, with no acknowledged write lost.
func TestDiskFullFailStop(t *testing.T) {
	framework.SkipUnlessCadre(t)
	dir := t.TempDir()
	mnt := filepath.Join(dir, "small")
	if err := os.MkdirAll(mnt, 0o755); err != nil {
		t.Fatal(err)
	}
	// Room for the WAL's first 64 MiB segment and a small backend.
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=90m", "tmpfs", mnt).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs for the disk-full fault (needs root): %v: %s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("umount", "-l", mnt).Run() })

	c := framework.NewCluster(t, 3, framework.Options{})
	lead := c.Leader(t)
	victim := c.Members[(lead+1)%3]
	// Move the victim's data dir onto the tmpfs: stop, copy, restart there.
	victim.Stop(t)
	small := filepath.Join(mnt, "data")
	if out, err := exec.Command("cp", "-a", victim.DataDir(), small).CombinedOutput(); err != nil {
		t.Fatalf("copying the data dir: %v: %s", err, out)
	}
	victim.SetArgs(t, framework.WithFlag(victim.Args(), "data-dir", small))
	victim.Restart(t)

	cli := framework.NewClient(t, c.Members[lead].Endpoint())
	ctx := context.Background()
	// Fill what is left of the tmpfs but a few MiB, then write big values
	// until the victim can no longer grow its backend.
	free := freeBytes(t, mnt)
	filler := filepath.Join(mnt, "filler")
	if err := os.WriteFile(filler, make([]byte, max(free-(4<<20), 0)), 0o600); err != nil && !strings.Contains(err.Error(), "no space") {
		t.Fatal(err)
	}
	acked := map[string]bool{}
	value := strings.Repeat("x", 256<<10)
	stoppedAt := -1
	for i := 0; i < 400; i++ {
		k := fmt.Sprintf("big/%04d", i)
		pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		_, err := cli.Put(pctx, k, value)
		cancel()
		if err == nil {
			acked[k] = true
		}
		if !victim.Running() {
			stoppedAt = i
			break
		}
	}
	if stoppedAt < 0 {
		t.Fatalf("the follower with a full disk still runs after 400 puts of 256 KiB; its log:\n%s", victim.LogTail(20))
	}
	code, _ := victim.Wait(5 * time.Second)
	t.Logf("follower %s stopped after put %d (exit %d): %s", victim.Name, stoppedAt, code, lastError(victim.LogTail(10)))
	if code == 0 {
		t.Errorf("a member that could not write stopped with exit 0; want a failure exit")
	}
	// The others go on.
	for i := 0; i < 20; i++ {
		k := fmt.Sprintf("after/%02d", i)
		pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		if _, err := cli.Put(pctx, k, "v"); err != nil {
			cancel()
			t.Fatalf("the cluster stopped taking writes with one member down: %v", err)
		}
		cancel()
		acked[k] = true
	}
	// Free the space; the follower restarts, catches up and agrees.
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	victim.Restart(t)
	r := &run{t: t, c: c}
	rev := r.settle()
	if n := r.checkHashes(rev); n != 0 {
		t.Fatalf("the restarted follower disagrees with the others")
	}
	vcli := framework.NewClient(t, victim.Endpoint())
	for k := range acked {
		resp, err := vcli.Get(ctx, k, clientv3.WithSerializable(), clientv3.WithKeysOnly())
		if err != nil || len(resp.Kvs) != 1 {
			t.Fatalf("acknowledged %s missing on the restarted follower: %v %v", k, err, resp)
		}
	}
	t.Logf("%d acknowledged writes all present on every member; HashKV equal at revision %d", len(acked), rev)
}

func lastError(log string) string {
	lines := strings.Split(strings.TrimSpace(log), "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		if strings.Contains(lines[i], `"level":"error"`) {
			return lines[i]
		}
	}
	if len(lines) > 0 {
		return lines[len(lines)-1]
	}
	return ""
}
