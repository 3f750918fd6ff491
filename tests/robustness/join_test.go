package robustness

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/cadrekv/cadre/tests/framework"
)

// joinSteps are the points of `cadre --join` at which the faultinject
// build can kill the joiner with SIGKILL (join.CrashPoint): after the
// pre-flight, after its identity is recorded (before the add), after the
// add (before its WAL exists), and as a started learner (before its
// promotion).
var joinSteps = []string{"preflight", "identity", "added", "learner"}

// TestJoinKilledAtEachStep: a joiner killed with SIGKILL at each step of
// `cadre --join` and started again with the same flags finishes the join:
// it ends a voting member that serves every acknowledged write, the
// cluster never holds more than one entry for it (a retry reuses its
// entry), and a writer running throughout loses nothing. Each joiner is
// removed again before the next step, so the cluster stays at three.
func TestJoinKilledAtEachStep(t *testing.T) {
	c := framework.NewCluster(t, 3, framework.Options{})
	cli := framework.NewClient(t, c.Endpoints()...)
	var acked []string
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() { // a writer through the original members, bounded
		defer close(done)
		for i := 0; i < 100000; i++ {
			select {
			case <-stop:
				return
			default:
			}
			k := fmt.Sprintf("/joinkill/%06d", i)
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
			_, err := cli.Put(ctx, k, "v")
			cancel()
			if err == nil {
				acked = append(acked, k)
			} else {
				time.Sleep(20 * time.Millisecond)
			}
		}
	}()

	for _, step := range joinSteps {
		name := "join-" + step
		ports := framework.FreePorts(t, 2)
		peer, client := fmt.Sprintf("http://127.0.0.1:%d", ports[0]), fmt.Sprintf("http://127.0.0.1:%d", ports[1])
		flags := []string{
			"--name", name, "--data-dir", filepath.Join(c.Dir(), name+".data"),
			"--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
			"--listen-client-urls", client, "--advertise-client-urls", client,
			"--join", strings.Join(c.Endpoints(), ","),
		}
		m := c.AddMemberProcess(t, name, flags, []string{"CADRE_JOIN_CRASH=" + step})
		if _, exited := m.Wait(90 * time.Second); !exited {
			t.Fatalf("joiner killed at %q: still running\n%s", step, m.LogTail(20))
		}
		if sig, ok := m.ExitSignal(); !ok || sig != syscall.SIGKILL {
			t.Fatalf("joiner at %q: exited without SIGKILL (code %d)\n%s", step, m.ExitCode(), m.LogTail(20))
		}
		t.Logf("joiner killed at %q; entries for its peer URL: %d", step, entriesAt(t, cli, peer))

		m2 := c.AddMemberProcess(t, name+"-again", flags, nil)
		id := waitJoined(t, cli, name, peer)
		m2.WaitHealthy(t, 30*time.Second)
		if n := entriesAt(t, cli, peer); n != 1 {
			t.Fatalf("after a join interrupted at %q: %d member entries at %s, want 1", step, n, peer)
		}
		if step != "preflight" && step != "learner" && !m2.LogContains("resuming an interrupted join") {
			t.Errorf("the restarted joiner (killed at %q) did not resume its recorded join:\n%s", step, m2.LogTail(20))
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		resp, err := framework.NewClient(t, client).Get(ctx, "/joinkill/", clientv3.WithPrefix(), clientv3.WithCountOnly())
		cancel()
		if err != nil || resp.Count == 0 {
			t.Fatalf("joined member (killed at %q) does not serve: %v (err %v)", step, resp, err)
		}
		// Back to three: remove it; a removed member exits with code 3.
		rctx, rcancel := context.WithTimeout(context.Background(), 30*time.Second)
		for attempt := 0; attempt < 60; attempt++ {
			if _, err = cli.MemberRemove(rctx, id); err == nil || strings.Contains(err.Error(), "member not found") {
				err = nil
				break
			}
			time.Sleep(500 * time.Millisecond)
		}
		rcancel()
		if err != nil {
			t.Fatalf("removing %s: %v", name, err)
		}
		if code, exited := m2.Wait(30 * time.Second); !exited || code != 3 {
			t.Fatalf("removed joiner %s: exited %v code %d, want 3", name, exited, code)
		}
	}
	close(stop)
	<-done
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := cli.Get(ctx, "/joinkill/", clientv3.WithPrefix(), clientv3.WithKeysOnly())
	if err != nil {
		t.Fatal(err)
	}
	have := map[string]bool{}
	for _, kv := range resp.Kvs {
		have[string(kv.Key)] = true
	}
	for _, k := range acked {
		if !have[k] {
			t.Fatalf("acknowledged write %s lost (%d acknowledged)", k, len(acked))
		}
	}
	t.Logf("%d acknowledged writes, all present", len(acked))
}

// entriesAt counts the member entries with peer URL peer.
func entriesAt(t *testing.T, cli *clientv3.Client, peer string) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := cli.MemberList(ctx)
	if err != nil {
		t.Fatalf("member list: %v", err)
	}
	n := 0
	for _, m := range resp.Members {
		for _, u := range m.PeerURLs {
			if u == peer {
				n++
			}
		}
	}
	return n
}

// waitJoined waits until name is a started voting member and returns its ID.
func waitJoined(t *testing.T, cli *clientv3.Client, name, peer string) uint64 {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		resp, err := cli.MemberList(ctx)
		cancel()
		if err == nil {
			for _, m := range resp.Members {
				if m.Name == name && !m.IsLearner && len(m.PeerURLs) == 1 && m.PeerURLs[0] == peer {
					return m.ID
				}
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("%s did not become a voting member within 90 s", name)
	return 0
}
