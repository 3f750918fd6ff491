package e2e

import (
	"context"
	"fmt"
	"slices"
	"testing"

	"github.com/cadrekv/cadre/tests/framework"
	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
)

func keysOf(kvs []*mvccpb.KeyValue) []string {
	out := make([]string, len(kvs))
	for i, kv := range kvs {
		out[i] = string(kv.Key)
	}
	return out
}

// TestClientV3KV checks the KV API semantics the official client relies on,
// value by value, against a 3-member cluster.
func TestClientV3KV(t *testing.T) {
	t.Parallel()
	c := framework.NewCluster(t, 3, framework.Options{})
	cli := c.Client(t)
	ctx := func() context.Context { return ctxFor(t, opTimeout) }

	// Fixture: kv/a..kv/e at revisions base+1..base+5, then kv/c rewritten
	// (version 2) at base+6, then kw outside the prefix at base+7.
	rev := map[string]int64{}
	for _, k := range []string{"a", "b", "c", "d", "e"} {
		r, err := cli.Put(ctx(), "kv/"+k, "v"+k)
		if err != nil {
			t.Fatal(err)
		}
		rev[k] = r.Header.Revision
	}
	base := rev["a"] - 1
	for i, k := range []string{"a", "b", "c", "d", "e"} {
		if rev[k] != base+int64(i)+1 {
			t.Fatalf("revision of kv/%s = %d, want %d (each put bumps the revision by one)", k, rev[k], base+int64(i)+1)
		}
	}
	r, err := cli.Put(ctx(), "kv/c", "vc2")
	if err != nil || r.Header.Revision != base+6 {
		t.Fatalf("second put kv/c: %v, rev %v, want %d", err, r, base+6)
	}
	if r, err := cli.Put(ctx(), "kw", "outside"); err != nil || r.Header.Revision != base+7 {
		t.Fatalf("put kw: %v, %v", err, r)
	}

	rangeCases := []struct {
		name      string
		key       string
		opts      []clientv3.OpOption
		wantKeys  []string
		wantCount int64 // -1: not checked
		wantMore  bool
	}{
		{"prefix", "kv/", []clientv3.OpOption{clientv3.WithPrefix()}, []string{"kv/a", "kv/b", "kv/c", "kv/d", "kv/e"}, 5, false},
		{"single", "kv/b", nil, []string{"kv/b"}, 1, false},
		{"missing", "kv/zz", nil, []string{}, 0, false},
		{"from-key", "kv/c", []clientv3.OpOption{clientv3.WithFromKey()}, []string{"kv/c", "kv/d", "kv/e", "kw"}, 4, false},
		{"range-end", "kv/b", []clientv3.OpOption{clientv3.WithRange("kv/d")}, []string{"kv/b", "kv/c"}, 2, false},
		{"limit", "kv/", []clientv3.OpOption{clientv3.WithPrefix(), clientv3.WithLimit(2)}, []string{"kv/a", "kv/b"}, 5, true},
		{"limit-equal-count", "kv/", []clientv3.OpOption{clientv3.WithPrefix(), clientv3.WithLimit(5)}, []string{"kv/a", "kv/b", "kv/c", "kv/d", "kv/e"}, 5, false},
		{"old-revision", "kv/", []clientv3.OpOption{clientv3.WithPrefix(), clientv3.WithRev(base + 2)}, []string{"kv/a", "kv/b"}, 2, false},
		{"sort-key-desc", "kv/", []clientv3.OpOption{clientv3.WithPrefix(), clientv3.WithSort(clientv3.SortByKey, clientv3.SortDescend)}, []string{"kv/e", "kv/d", "kv/c", "kv/b", "kv/a"}, 5, false},
		{"sort-mod-desc", "kv/", []clientv3.OpOption{clientv3.WithPrefix(), clientv3.WithSort(clientv3.SortByModRevision, clientv3.SortDescend)}, []string{"kv/c", "kv/e", "kv/d", "kv/b", "kv/a"}, 5, false},
		{"sort-version-desc-limit", "kv/", []clientv3.OpOption{clientv3.WithPrefix(), clientv3.WithSort(clientv3.SortByVersion, clientv3.SortDescend), clientv3.WithLimit(1)}, []string{"kv/c"}, 5, true},
		{"sort-value-asc", "kv/", []clientv3.OpOption{clientv3.WithPrefix(), clientv3.WithSort(clientv3.SortByValue, clientv3.SortAscend)}, []string{"kv/a", "kv/b", "kv/c", "kv/d", "kv/e"}, 5, false},
		{"min-mod-rev", "kv/", []clientv3.OpOption{clientv3.WithPrefix(), clientv3.WithMinModRev(base + 4)}, []string{"kv/c", "kv/d", "kv/e"}, -1, false},
		{"max-mod-rev", "kv/", []clientv3.OpOption{clientv3.WithPrefix(), clientv3.WithMaxModRev(base + 4)}, []string{"kv/a", "kv/b", "kv/d"}, -1, false},
		{"min-create-rev", "kv/", []clientv3.OpOption{clientv3.WithPrefix(), clientv3.WithMinCreateRev(base + 3)}, []string{"kv/c", "kv/d", "kv/e"}, -1, false},
		{"max-create-rev", "kv/", []clientv3.OpOption{clientv3.WithPrefix(), clientv3.WithMaxCreateRev(base + 2)}, []string{"kv/a", "kv/b"}, -1, false},
	}
	for _, tc := range rangeCases {
		resp, err := cli.Get(ctx(), tc.key, tc.opts...)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if got := keysOf(resp.Kvs); !slices.Equal(got, tc.wantKeys) {
			t.Errorf("%s: keys %q, want %q", tc.name, got, tc.wantKeys)
		}
		if tc.wantCount >= 0 && resp.Count != tc.wantCount {
			t.Errorf("%s: count %d, want %d", tc.name, resp.Count, tc.wantCount)
		}
		if resp.More != tc.wantMore {
			t.Errorf("%s: more %v, want %v", tc.name, resp.More, tc.wantMore)
		}
		if resp.Header.Revision != base+7 {
			t.Errorf("%s: header revision %d, want %d", tc.name, resp.Header.Revision, base+7)
		}
	}

	// Values, versions and revisions of one key, now and in the past.
	got, err := cli.Get(ctx(), "kv/c")
	if err != nil || len(got.Kvs) != 1 {
		t.Fatalf("get kv/c: %v %v", err, got)
	}
	if kv := got.Kvs[0]; string(kv.Value) != "vc2" || kv.Version != 2 || kv.CreateRevision != base+3 || kv.ModRevision != base+6 {
		t.Fatalf("kv/c = %+v, want value vc2 version 2 create %d mod %d", kv, base+3, base+6)
	}
	got, err = cli.Get(ctx(), "kv/c", clientv3.WithRev(base+5))
	if err != nil || len(got.Kvs) != 1 || string(got.Kvs[0].Value) != "vc" || got.Kvs[0].Version != 1 {
		t.Fatalf("kv/c at rev %d: %v %v, want value vc version 1", base+5, err, got)
	}
	got, err = cli.Get(ctx(), "kv/", clientv3.WithPrefix(), clientv3.WithKeysOnly())
	if err != nil || len(got.Kvs) != 5 {
		t.Fatalf("keys-only: %v %v", err, got)
	}
	for _, kv := range got.Kvs {
		if len(kv.Value) != 0 || kv.ModRevision == 0 {
			t.Fatalf("keys-only: %+v, want no value but revisions", kv)
		}
	}
	got, err = cli.Get(ctx(), "kv/", clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil || len(got.Kvs) != 0 || got.Count != 5 {
		t.Fatalf("count-only: %v, kvs %d count %d, want 0 kvs count 5", err, len(got.Kvs), got.Count)
	}
	// A serializable read on each member is served locally; it converges to
	// the committed value.
	for _, m := range c.Members {
		mc := framework.NewClient(t, m.Endpoint())
		eventually(t, opTimeout, "serializable get on "+m.Name, func() error {
			r, err := mc.Get(ctx(), "kv/c", clientv3.WithSerializable())
			if err != nil {
				return err
			}
			if len(r.Kvs) != 1 || string(r.Kvs[0].Value) != "vc2" {
				return fmt.Errorf("got %v", r.Kvs)
			}
			return nil
		})
	}

	t.Run("txn", func(t *testing.T) { testTxn(t, cli, base) })
	t.Run("prev-kv", func(t *testing.T) { testPrevKV(t, cli) })
	t.Run("errors", func(t *testing.T) { testKVErrors(t, cli) })
}
