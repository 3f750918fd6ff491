package e2e

import (
	"testing"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/cadrekv/cadre/tests/framework"
)

// TestWatchFromCompactedDelete is etcd's issue 18089: a key is written,
// deleted and written again, history is compacted at the deletion's
// revision, and a watch starts there. It must see the deletion, then the
// new write (the compaction revision is still watchable). Also passes on
// etcd.
func TestWatchFromCompactedDelete(t *testing.T) {
	c := framework.NewCluster(t, 1, framework.Options{})
	cli := c.Client(t)
	ctx := ctxFor(t, 30*time.Second)
	for _, v := range []string{"v2", "v3", "v4"} {
		if _, err := cli.Put(ctx, "k", v); err != nil {
			t.Fatal(err)
		}
	}
	del, err := cli.Delete(ctx, "k")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cli.Put(ctx, "k", "v6"); err != nil {
		t.Fatal(err)
	}
	if _, err := cli.Compact(ctx, del.Header.Revision, clientv3.WithCompactPhysical()); err != nil {
		t.Fatal(err)
	}
	wch := cli.Watch(ctx, "k", clientv3.WithRev(del.Header.Revision))
	select {
	case resp := <-wch:
		if err := resp.Err(); err != nil {
			t.Fatalf("watch from the compacted deletion's revision %d: %v", del.Header.Revision, err)
		}
		ev := resp.Events
		if len(ev) != 2 || ev[0].Type != mvccpb.DELETE || string(ev[0].Kv.Key) != "k" || ev[0].Kv.ModRevision != del.Header.Revision ||
			ev[1].Type != mvccpb.PUT || string(ev[1].Kv.Value) != "v6" {
			t.Fatalf("watch from revision %d got %v; want the deletion, then the put of v6", del.Header.Revision, ev)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no watch response in 5 s")
	}
}
