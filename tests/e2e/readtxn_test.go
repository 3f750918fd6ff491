package e2e

import (
	"fmt"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/cadrekv/cadre/tests/framework"
)

// TestReadOnlyTxnIsARead: a txn without puts or deletes is served as a
// read, as etcd serves it: linearizable through any member (a follower
// sees the write acknowledged just before through another member), and it
// adds no entry to the raft log, while a txn that writes adds one.
func TestReadOnlyTxnIsARead(t *testing.T) {
	c := framework.NewCluster(t, 3, framework.Options{})
	ctx := ctxFor(t, time.Minute)
	lead := c.Leader(t)
	writer := framework.NewClient(t, c.Members[lead].Endpoint())
	follower := c.Members[(lead+1)%3]
	reader := framework.NewClient(t, follower.Endpoint())

	for i := range 20 {
		v := fmt.Sprintf("v%d", i)
		if _, err := writer.Put(ctx, "/rotxn/k", v); err != nil {
			t.Fatal(err)
		}
		resp, err := reader.Txn(ctx).If(clientv3.Compare(clientv3.Value("/rotxn/k"), "=", v)).
			Then(clientv3.OpGet("/rotxn/k")).Else(clientv3.OpGet("/rotxn/", clientv3.WithPrefix(), clientv3.WithCountOnly())).Commit()
		if err != nil {
			t.Fatalf("read-only txn on a follower: %v", err)
		}
		if !resp.Succeeded {
			t.Fatalf("read-only txn on %s after an acknowledged put of %q: compare failed (a stale read)", follower.Name, v)
		}
		if kv := resp.Responses[0].GetResponseRange().Kvs; len(kv) != 1 || string(kv[0].Value) != v {
			t.Fatalf("read-only txn on a follower read %v, want %q", kv, v)
		}
	}

	index := func() uint64 {
		t.Helper()
		st, err := writer.Status(ctx, c.Members[lead].Endpoint())
		if err != nil {
			t.Fatal(err)
		}
		return st.RaftIndex
	}
	// Wait until nothing else is being proposed (publish, incarnations).
	var before uint64
	eventually(t, 20*time.Second, "a quiet raft log", func() error {
		a := index()
		time.Sleep(300 * time.Millisecond)
		if b := index(); b != a {
			return fmt.Errorf("index moved %d -> %d", a, b)
		}
		before = a
		return nil
	})
	for range 50 {
		if _, err := reader.Txn(ctx).If(clientv3.Compare(clientv3.Version("/rotxn/k"), ">", 0)).Then(clientv3.OpGet("/rotxn/k")).Commit(); err != nil {
			t.Fatal(err)
		}
		if _, err := reader.Txn(ctx).Then(clientv3.OpGet("/rotxn/k", clientv3.WithSerializable())).Commit(); err != nil {
			t.Fatal(err)
		}
	}
	if after := index(); after != before {
		t.Fatalf("100 read-only txns moved the raft index from %d to %d; want no entries", before, after)
	}
	if _, err := reader.Txn(ctx).Then(clientv3.OpPut("/rotxn/w", "1")).Commit(); err != nil {
		t.Fatal(err)
	}
	if after := index(); after != before+1 {
		t.Fatalf("a writing txn moved the raft index from %d to %d; want one entry (the check above could not fail)", before, after)
	}
}
