package e2e

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

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

	// Flip one byte of a stored value, as a bad disk would.
	db, err := bolt.Open(filepath.Join(victim.DataDir(), "member", "db"), 0o600, &bolt.Options{Timeout: 5 * time.Second})
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
