package e2e

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/cadrekv/cadre/internal/storage/schema"
	"github.com/cadrekv/cadre/tests/framework"
)

// TestCorruptMemberRefusedAtStart: a member whose data was altered on disk
// compares its key history with its peers' at start and refuses to serve,
// naming the corruption and the fix.
func TestCorruptMemberRefusedAtStart(t *testing.T) {
	framework.SkipUnlessCadre(t)
	c := framework.NewCluster(t, 3, framework.Options{})
	cli := c.Client(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for i := 0; i < 20; i++ {
		if _, err := cli.Put(ctx, fmt.Sprintf("/c/%02d", i), "original-value"); err != nil {
			t.Fatal(err)
		}
	}
	victim := c.Members[2]
	waitCaughtUpRev(t, victim, ctx)
	if code := victim.Stop(t); code != 0 {
		t.Fatalf("stop: exit %d", code)
	}

	alterStoredValue(t, victim)

	victim.Start(t)
	code, exited := victim.Wait(30 * time.Second)
	if !exited || code == 0 {
		t.Fatalf("a member with altered data: exited=%v code=%d, want a refusal", exited, code)
	}
	if !victim.LogContains("data corruption detected") || !victim.LogContains("re-add the member") {
		t.Fatalf("the refusal does not name the corruption and the fix:\n%s", victim.LogTail(10))
	}
	// The others are unaffected.
	if _, err := framework.NewClient(t, c.Members[0].Endpoint(), c.Members[1].Endpoint()).Put(ctx, "/c/after", "ok"); err != nil {
		t.Fatalf("cluster after the refusal: %v", err)
	}
}

func waitCaughtUpRev(t *testing.T, m *framework.Member, ctx context.Context) {
	t.Helper()
	cli := framework.NewClient(t, m.Endpoint())
	for deadline := time.Now().Add(10 * time.Second); ; {
		g, err := cli.Get(ctx, "/c/19")
		if err == nil && len(g.Kvs) == 1 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not catch up", m.Name)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// alterStoredValue flips one byte of the newest stored value in a stopped
// member's backend, as a bad disk would; the record stays decodable.
func alterStoredValue(t *testing.T, victim *framework.Member) {
	t.Helper()
	db, err := bolt.Open(schema.DBPath(victim.DataDir()), 0o600, &bolt.Options{Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte("kv"))
		if b == nil {
			return fmt.Errorf("no kv bucket")
		}
		k, v := b.Cursor().Last()
		nv := append([]byte(nil), v...)
		for i := len(nv) - 1; i >= 0; i-- {
			if nv[i] == 'e' { // inside "original-value": stays a valid record
				nv[i] = 'E'
				break
			}
		}
		return b.Put(append([]byte(nil), k...), nv)
	})
	db.Close()
	if err != nil {
		t.Fatal(err)
	}

}

// TestPeriodicCorruptionCheck: with --corrupt-check-time, the leader finds a
// member whose data was altered on disk while it runs (its start-up check
// switched off), raises CORRUPT for that member through raft, and the
// cluster then refuses writes with etcd's error while reads keep working.
func TestPeriodicCorruptionCheck(t *testing.T) {
	framework.SkipUnlessCadre(t)
	c := framework.NewCluster(t, 3, framework.Options{ExtraFlags: []string{"--corrupt-check-time", "1s"}})
	cli := c.Client(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for i := 0; i < 20; i++ {
		if _, err := cli.Put(ctx, fmt.Sprintf("/c/%02d", i), "original-value"); err != nil {
			t.Fatal(err)
		}
	}
	// Healthy members raise nothing over a few check periods.
	time.Sleep(2500 * time.Millisecond)
	if res := c.Etcdctl(t, "alarm", "list"); res.Code != 0 || strings.TrimSpace(res.Stdout) != "" {
		t.Fatalf("alarms on a healthy cluster: %s", res)
	}

	victim := c.Members[1]
	if c.Leader(t) == 1 {
		victim = c.Members[2]
	}
	waitCaughtUpRev(t, victim, ctx)
	id := memberID(t, ctx, cli, victim.Name)
	if code := victim.Stop(t); code != 0 {
		t.Fatalf("stop: exit %d", code)
	}
	alterStoredValue(t, victim)
	victim.SetArgs(t, append(victim.Args(), "--initial-corrupt-check=false"))
	victim.Start(t)
	// Serving again; its /health may already answer 503 "ALARM CORRUPT"
	// (the leader checks every second), so the log says when.
	eventually(t, 30*time.Second, victim.Name+" serving again", func() error {
		if n := strings.Count(victim.Log(), "ready to serve client requests"); n < 2 {
			return fmt.Errorf("%d starts served so far", n)
		}
		return nil
	})

	want := regexp.MustCompile(fmt.Sprintf(`memberID:%d\s+alarm:CORRUPT`, id))
	var last framework.Result
	for deadline := time.Now().Add(20 * time.Second); ; {
		last = c.Etcdctl(t, "alarm", "list")
		if want.MatchString(last.Stdout) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no CORRUPT alarm for the altered member %x; alarm list: %s\nstdout: %q", id, last, last.Stdout)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if strings.Count(last.Stdout, "alarm:") != 1 {
		t.Errorf("only the altered member should be blamed; alarm list:\n%s", last.Stdout)
	}
	healthy := framework.NewClient(t, c.Members[0].Endpoint())
	if _, err := healthy.Put(ctx, "/c/after", "x"); err == nil || !strings.Contains(err.Error(), "etcdserver: corrupt cluster") {
		t.Fatalf("write with CORRUPT active: %v, want etcdserver: corrupt cluster", err)
	}
	if g, err := healthy.Get(ctx, "/c/00"); err != nil || len(g.Kvs) != 1 {
		t.Fatalf("read with CORRUPT active: %v (err %v)", g, err)
	}
}
