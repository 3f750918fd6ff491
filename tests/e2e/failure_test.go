package e2e

import (
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/cadrekv/cadre/tests/framework"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// liveClient is a client over the members that are running now.
func liveClient(t *testing.T, c *framework.Cluster) *clientv3.Client {
	t.Helper()
	return framework.NewClient(t, c.RunningEndpoints()...)
}

// waitCaughtUp waits until a serializable (local) read on m returns want
// keys under prefix, including last with its writer value.
func waitCaughtUp(t *testing.T, m *framework.Member, prefix, last string, want int64, d time.Duration) {
	t.Helper()
	mc := framework.NewClient(t, m.Endpoint())
	eventually(t, d, m.Name+" catching up", func() error {
		ctx := ctxFor(t, opTimeout)
		r, err := mc.Get(ctx, last, clientv3.WithSerializable())
		if err != nil {
			return err
		}
		if len(r.Kvs) != 1 || string(r.Kvs[0].Value) != writerValue(last) {
			return fmt.Errorf("last key %s not there yet: %v", last, r.Kvs)
		}
		cnt, err := mc.Get(ctx, prefix, clientv3.WithPrefix(), clientv3.WithCountOnly(), clientv3.WithSerializable())
		if err != nil {
			return err
		}
		if cnt.Count != want {
			return fmt.Errorf("%d keys under %s, want %d", cnt.Count, prefix, want)
		}
		return nil
	})
}

// TestKillLeaderDuringWrites kills the leader with SIGKILL while a client
// writes; the survivors elect a new leader, keep accepting writes, lose no
// acknowledged write, and the killed member catches up after a restart:
// from the log, or through a snapshot: with --snapshot-count 100 and
// --snapshot-catchup-entries 50 the leader has compacted the entries the
// member misses after 350 writes (etcd logs "sent database snapshot" here).
func TestKillLeaderDuringWrites(t *testing.T) {
	for _, tc := range []struct {
		name       string
		flags      []string
		whileDown  int // acknowledged writes to wait for while the member is down
		downBudget time.Duration
	}{
		{"log-catchup", nil, 50, 20 * time.Second},
		{"snapshot-catchup", []string{"--snapshot-count", "100", "--snapshot-catchup-entries", "50"}, 350, 60 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := framework.NewCluster(t, 3, framework.Options{ExtraFlags: tc.flags})
			prefix := "/kill-" + tc.name + "/"
			w := startWriter(c.Client(t), prefix)
			defer w.Stop(t)
			w.WaitAcked(t, 50, 15*time.Second)

			old := c.Leader(t)
			killed := c.Members[old]
			killed.Kill(t)
			if sig, ok := killed.ExitSignal(); !ok || sig != syscall.SIGKILL {
				t.Fatalf("%s: exit signal %v %v, want SIGKILL", killed.Name, sig, ok)
			}
			atKill := w.Acked()
			start := time.Now()
			nl := c.Leader(t)
			if nl == old {
				t.Fatalf("leader is still the killed member %s", killed.Name)
			}
			t.Logf("killed leader %s at %d acked writes; %s leads after %v", killed.Name, atKill, c.Members[nl].Name, time.Since(start))
			w.WaitAcked(t, atKill+tc.whileDown, tc.downBudget)
			acked := w.Stop(t)

			total := checkKeys(t, liveClient(t, c), prefix, acked)
			killed.Restart(t)
			waitCaughtUp(t, killed, prefix, acked[len(acked)-1], total, 30*time.Second)
			// The restarted member holds every acknowledged write itself.
			checkKeys(t, framework.NewClient(t, killed.Endpoint()), prefix, acked, clientv3.WithSerializable())
		})
	}
}

// TestKillAllAndRestart crashes every member at once; all acknowledged
// writes survive a restart from the data dirs.
func TestKillAllAndRestart(t *testing.T) {
	c := framework.NewCluster(t, 3, framework.Options{})
	cli := c.Client(t)
	var acked []string
	for i := range 100 {
		key := writerKey("/crash/", i)
		if _, err := cli.Put(ctxFor(t, opTimeout), key, writerValue(key)); err != nil {
			t.Fatalf("put %s: %v", key, err)
		}
		acked = append(acked, key)
	}
	before, err := cli.Get(ctxFor(t, opTimeout), "/crash/", clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range c.Members {
		m.Kill(t)
	}
	c.RestartAll(t)
	cli = c.Client(t)
	if n := checkKeys(t, cli, "/crash/", acked); n != 100 {
		t.Fatalf("%d keys after restart, want 100", n)
	}
	after, err := cli.Get(ctxFor(t, opTimeout), "/crash/", clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil {
		t.Fatal(err)
	}
	if after.Header.Revision < before.Header.Revision {
		t.Fatalf("revision went back from %d to %d across the crash", before.Header.Revision, after.Header.Revision)
	}
	// The restarted cluster takes writes and every member serves them.
	put, err := cli.Put(ctxFor(t, opTimeout), "/crash/after", "x")
	if err != nil || put.Header.Revision != after.Header.Revision+1 {
		t.Fatalf("put after restart: %v %v, want revision %d", err, put, after.Header.Revision+1)
	}
	for _, m := range c.Members {
		r, err := framework.NewClient(t, m.Endpoint()).Get(ctxFor(t, opTimeout), "/crash/after")
		if err != nil || len(r.Kvs) != 1 {
			t.Fatalf("linearizable get on %s after restart: %v %v", m.Name, err, r)
		}
	}
}

// TestGracefulStop sends SIGTERM to the leader while a client writes: it
// exits promptly (0 for Cadre), another member leads, nothing acknowledged
// is lost, and the stopped member rejoins.
func TestGracefulStop(t *testing.T) {
	c := framework.NewCluster(t, 3, framework.Options{})
	prefix := "/graceful/"
	w := startWriter(c.Client(t), prefix)
	defer w.Stop(t)
	w.WaitAcked(t, 50, 15*time.Second)

	old := c.Leader(t)
	m := c.Members[old]
	start := time.Now()
	code := m.Stop(t) // fails the test if it takes over framework.StopTimeout
	t.Logf("%s stopped in %v with exit code %d", m.Name, time.Since(start), code)
	if framework.IsCadre() {
		if code != 0 {
			t.Fatalf("%s exited %d on SIGTERM, want 0", m.Name, code)
		}
	} else if sig, signaled := m.ExitSignal(); code != 0 && !(signaled && sig == syscall.SIGTERM) {
		// etcd re-raises SIGTERM after its shutdown; either is a clean stop.
		t.Fatalf("%s exited %d (signal %v) on SIGTERM", m.Name, code, sig)
	}
	atStop := w.Acked()
	if nl := c.Leader(t); nl == old {
		t.Fatalf("stopped member %s still reported as leader", m.Name)
	}
	w.WaitAcked(t, atStop+30, 20*time.Second)
	acked := w.Stop(t)
	total := checkKeys(t, liveClient(t, c), prefix, acked)

	m.Restart(t)
	waitCaughtUp(t, m, prefix, acked[len(acked)-1], total, 30*time.Second)
}
