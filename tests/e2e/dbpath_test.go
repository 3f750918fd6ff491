package e2e

import (
	"os"
	"testing"
	"time"

	"github.com/cadrekv/cadre/internal/storage/schema"
	"github.com/cadrekv/cadre/tests/framework"
)

// TestBackendAtEtcdsPlace: the bbolt file is at member/snap/db, where
// etcd's offline tools look (`etcdutl defrag --data-dir` works on a stopped
// member), and a data dir from an earlier Cadre (file at member/db) is
// moved there on start without losing anything.
func TestBackendAtEtcdsPlace(t *testing.T) {
	framework.SkipUnlessCadre(t)
	etcdutl := etcdutlOrSkip(t)
	c := framework.NewCluster(t, 1, framework.Options{})
	m := c.Members[0]
	ctx := ctxFor(t, time.Minute)
	if _, err := c.Client(t).Put(ctx, "/db/k", "v"); err != nil {
		t.Fatal(err)
	}
	m.Stop(t)
	if _, err := os.Stat(schema.DBPath(m.DataDir())); err != nil {
		t.Fatalf("backend not at etcd's place: %v", err)
	}
	if res := framework.RunProcess(t, etcdutl, []string{"defrag", "--data-dir", m.DataDir()}, nil); res.Code != 0 {
		t.Fatalf("etcdutl defrag --data-dir on a stopped Cadre member: %s", res)
	}

	// An earlier Cadre's layout: moved on start.
	if err := os.Rename(schema.DBPath(m.DataDir()), schema.LegacyDBPath(m.DataDir())); err != nil {
		t.Fatal(err)
	}
	m.Start(t)
	m.WaitHealthy(t, 30*time.Second)
	if !m.LogContains("moved the backend to etcd's location") {
		t.Error("the move is not logged")
	}
	if _, err := os.Stat(schema.LegacyDBPath(m.DataDir())); !os.IsNotExist(err) {
		t.Errorf("old backend file still there: %v", err)
	}
	resp, err := framework.NewClient(t, m.Endpoint()).Get(ctx, "/db/k")
	if err != nil || len(resp.Kvs) != 1 || string(resp.Kvs[0].Value) != "v" {
		t.Fatalf("after defrag and move: %v (err %v)", resp, err)
	}
}
