package e2e

import (
	"context"
	"fmt"
	"testing"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/cadrekv/cadre/tests/framework"
)

// TestHashKVAgrees: after the same writes, every member reports the same
// HashKV at the same revision (through client/v3 and the real etcdctl),
// and a different history gives a different hash.
func TestHashKVAgrees(t *testing.T) {
	c := framework.NewCluster(t, 3, framework.Options{})
	cli := c.Client(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var rev int64
	for i := 0; i < 50; i++ {
		resp, err := cli.Put(ctx, fmt.Sprintf("/h/%02d", i%10), fmt.Sprint(i))
		if err != nil {
			t.Fatal(err)
		}
		rev = resp.Header.Revision
	}
	hashes := map[uint32][]string{}
	for _, m := range c.Members {
		one := framework.NewClient(t, m.Endpoint())
		// Wait until the member has applied rev (serializable read).
		for deadline := time.Now().Add(10 * time.Second); ; {
			g, err := one.Get(ctx, "/h/00", clientv3.WithSerializable())
			if err == nil && g.Header.Revision >= rev {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s did not reach revision %d", m.Name, rev)
			}
			time.Sleep(50 * time.Millisecond)
		}
		h, err := one.HashKV(ctx, m.Endpoint(), rev)
		if err != nil {
			t.Fatalf("HashKV on %s: %v", m.Name, err)
		}
		hashes[h.Hash] = append(hashes[h.Hash], m.Name)
	}
	if len(hashes) != 1 {
		t.Fatalf("members disagree on HashKV at revision %d: %v", rev, hashes)
	}
	if r := c.Etcdctl(t, "endpoint", "hashkv", "--cluster"); r.Code != 0 {
		t.Fatalf("etcdctl endpoint hashkv --cluster: %s", r)
	}
	// One more write changes the hash at the new revision.
	resp, err := cli.Put(ctx, "/h/extra", "x")
	if err != nil {
		t.Fatal(err)
	}
	h2, err := framework.NewClient(t, c.Members[0].Endpoint()).HashKV(ctx, c.Members[0].Endpoint(), resp.Header.Revision)
	if err != nil {
		t.Fatal(err)
	}
	if _, same := hashes[h2.Hash]; same {
		t.Fatalf("a new write did not change the hash")
	}
}

// TestHashAgrees: Maintenance.Hash (the whole backend) is the same on every
// member once they have applied the same writes, and changes with a write.
func TestHashAgrees(t *testing.T) {
	framework.SkipUnlessCadre(t) // etcd's Hash also covers per-member bookkeeping
	c := framework.NewCluster(t, 3, framework.Options{})
	cli := c.Client(t)
	ctx := ctxFor(t, 30*time.Second)
	hashAll := func() map[uint32][]string {
		t.Helper()
		var rev int64
		for i := 0; i < 20; i++ {
			resp, err := cli.Put(ctx, fmt.Sprintf("/hash/%02d", i), fmt.Sprint(i))
			if err != nil {
				t.Fatal(err)
			}
			rev = resp.Header.Revision
		}
		hashes := map[uint32][]string{}
		for _, m := range c.Members {
			one := framework.NewClient(t, m.Endpoint())
			var h *pb.HashResponse
			// Equal once the member has applied everything up to rev and
			// nothing else is in flight (a later Hash on a lagging member
			// would be taken too early).
			for deadline := time.Now().Add(10 * time.Second); ; {
				g, err := one.Get(ctx, "/hash/00", clientv3.WithSerializable())
				if err == nil && g.Header.Revision >= rev {
					if h, err = pb.NewMaintenanceClient(one.ActiveConnection()).Hash(ctx, &pb.HashRequest{}); err != nil {
						t.Fatalf("Hash on %s: %v", m.Name, err)
					}
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("%s did not reach revision %d", m.Name, rev)
				}
				time.Sleep(50 * time.Millisecond)
			}
			hashes[h.Hash] = append(hashes[h.Hash], m.Name)
		}
		return hashes
	}
	first := hashAll()
	if len(first) != 1 {
		t.Fatalf("members disagree on Hash: %v", first)
	}
	second := hashAll()
	if len(second) != 1 {
		t.Fatalf("members disagree on Hash after more writes: %v", second)
	}
	for h := range first {
		if _, same := second[h]; same {
			t.Fatalf("Hash did not change after writes: %x", h)
		}
	}
}
