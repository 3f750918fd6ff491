package e2e

import (
	"encoding/binary"
	"fmt"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/cadrekv/cadre/internal/storage/schema"
	"github.com/cadrekv/cadre/tests/framework"
)

// backendAppliedIndex reads the applied index committed in a stopped
// member's bbolt file (layout: internal/storage/mvcc/doc.go).
func backendAppliedIndex(t *testing.T, m *framework.Member) uint64 {
	t.Helper()
	db, err := bolt.Open(schema.DBPath(m.DataDir()), 0o600, &bolt.Options{ReadOnly: true, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatalf("open %s backend: %v", m.Name, err)
	}
	defer db.Close()
	var idx uint64
	err = db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte("mvcc"))
		if b == nil {
			return fmt.Errorf("no mvcc bucket")
		}
		if v := b.Get([]byte("applied_index")); len(v) == 8 {
			idx = binary.BigEndian.Uint64(v)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return idx
}

// TestBackendBatchReadYourWritesAndCrashReplay: backend (bbolt) commits are
// batched, so acknowledged writes may live only in the WAL and in memory.
// Every write is readable right after its acknowledgement (serializable and
// linearizable), and after a kill -9 while the backend lags the WAL, the
// restarted member holds every acknowledged write (replayed from the WAL).
func TestBackendBatchReadYourWritesAndCrashReplay(t *testing.T) {
	framework.SkipUnlessCadre(t)
	c := framework.NewCluster(t, 1, framework.Options{})
	m := c.Members[0]
	var acked []string
	lagged := false
	for attempt := 0; attempt < 3 && !lagged; attempt++ {
		cli := framework.NewClient(t, m.Endpoint())
		for i := range 200 {
			key := writerKey(fmt.Sprintf("/bb/%d/", attempt), i)
			if _, err := cli.Put(ctxFor(t, opTimeout), key, writerValue(key)); err != nil {
				t.Fatalf("put %s: %v", key, err)
			}
			acked = append(acked, key)
			for _, opts := range [][]clientv3.OpOption{{clientv3.WithSerializable()}, nil} {
				r, err := cli.Get(ctxFor(t, opTimeout), key, opts...)
				if err != nil || len(r.Kvs) != 1 || string(r.Kvs[0].Value) != writerValue(key) {
					t.Fatalf("read right after acknowledged put of %s (opts %d): %v %v", key, len(opts), r, err)
				}
			}
		}
		st, err := cli.Status(ctxFor(t, opTimeout), m.Endpoint())
		if err != nil {
			t.Fatal(err)
		}
		m.Kill(t)
		backend := backendAppliedIndex(t, m)
		t.Logf("attempt %d: applied index %d, backend file at %d when killed", attempt, st.RaftAppliedIndex, backend)
		lagged = backend < st.RaftAppliedIndex
		m.Restart(t)
		checkKeys(t, framework.NewClient(t, m.Endpoint()), "/bb/", acked, clientv3.WithSerializable())
	}
	if !lagged {
		t.Fatal("the backend never lagged the log at the kill in 3 attempts: the crash replay path was not exercised")
	}
}
