package e2e

import (
	"fmt"
	"testing"

	"github.com/cadrekv/cadre/tests/framework"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// Every member accepts writes (followers forward them to the leader) and a
// linearizable read on any other member sees a write as soon as it was
// acknowledged.
func TestThreeMembersWriteAnywhereReadLinearizable(t *testing.T) {
	t.Parallel()
	c := framework.NewCluster(t, 3, framework.Options{})
	clis := make([]*clientv3.Client, len(c.Members))
	for i, m := range c.Members {
		clis[i] = framework.NewClient(t, m.Endpoint())
	}
	const rounds = 10
	var lastRev int64
	want := map[string]string{}
	for r := range rounds {
		for i := range clis {
			key := fmt.Sprintf("/anywhere/%02d-%d", r, i)
			val := fmt.Sprintf("round %d via %s", r, c.Members[i].Name)
			put, err := clis[i].Put(ctxFor(t, opTimeout), key, val)
			if err != nil {
				t.Fatalf("put %s via %s: %v", key, c.Members[i].Name, err)
			}
			rev := put.Header.Revision
			if rev <= lastRev {
				t.Fatalf("put %s via %s: revision %d, want > previous %d", key, c.Members[i].Name, rev, lastRev)
			}
			lastRev = rev
			want[key] = val
			for j := range clis {
				if j == i {
					continue
				}
				get, err := clis[j].Get(ctxFor(t, opTimeout), key)
				if err != nil {
					t.Fatalf("linearizable get %s on %s: %v", key, c.Members[j].Name, err)
				}
				if len(get.Kvs) != 1 || string(get.Kvs[0].Value) != val || get.Kvs[0].ModRevision != rev {
					t.Fatalf("linearizable get %s on %s right after the put via %s acknowledged rev %d: got %v",
						key, c.Members[j].Name, c.Members[i].Name, rev, get.Kvs)
				}
				if get.Header.Revision < rev {
					t.Fatalf("get on %s: header revision %d < acknowledged %d", c.Members[j].Name, get.Header.Revision, rev)
				}
			}
		}
	}
	// Every member now holds the same full set at the same revision.
	for i, cli := range clis {
		get, err := cli.Get(ctxFor(t, opTimeout), "/anywhere/", clientv3.WithPrefix())
		if err != nil {
			t.Fatalf("range on %s: %v", c.Members[i].Name, err)
		}
		if get.Count != int64(len(want)) || len(get.Kvs) != len(want) {
			t.Fatalf("range on %s: count %d, %d kvs, want %d", c.Members[i].Name, get.Count, len(get.Kvs), len(want))
		}
		for _, kv := range get.Kvs {
			if want[string(kv.Key)] != string(kv.Value) {
				t.Fatalf("range on %s: %s = %q, want %q", c.Members[i].Name, kv.Key, kv.Value, want[string(kv.Key)])
			}
		}
		if get.Header.Revision != lastRev {
			t.Fatalf("range on %s: header revision %d, want %d", c.Members[i].Name, get.Header.Revision, lastRev)
		}
	}
}
