package e2e

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"testing"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
)

func bg(t *testing.T) context.Context { return ctxFor(t, opTimeout) }

func mustGet(t *testing.T, cli *clientv3.Client, key string) (string, bool) {
	t.Helper()
	r, err := cli.Get(bg(t), key)
	if err != nil {
		t.Fatalf("get %s: %v", key, err)
	}
	if len(r.Kvs) == 0 {
		return "", false
	}
	return string(r.Kvs[0].Value), true
}

func currentRev(t *testing.T, cli *clientv3.Client) int64 {
	t.Helper()
	r, err := cli.Get(bg(t), "any-key")
	if err != nil {
		t.Fatalf("get: %v", err)
	}
	return r.Header.Revision
}

// testTxn uses the fixture of TestClientV3KV: kv/a=va (create=mod=base+1),
// kv/b=vb, kv/c=vc2 (version 2, create base+3, mod base+6), kv/d, kv/e.
func testTxn(t *testing.T, cli *clientv3.Client, base int64) {
	cases := []struct {
		name string
		cmps []clientv3.Cmp
		want bool
	}{
		{"value-equal", []clientv3.Cmp{clientv3.Compare(clientv3.Value("kv/a"), "=", "va")}, true},
		{"value-not-equal", []clientv3.Cmp{clientv3.Compare(clientv3.Value("kv/a"), "=", "nope")}, false},
		{"value-less", []clientv3.Cmp{clientv3.Compare(clientv3.Value("kv/b"), "<", "vc")}, true},
		{"value-greater-false", []clientv3.Cmp{clientv3.Compare(clientv3.Value("kv/b"), ">", "vc")}, false},
		{"version", []clientv3.Cmp{clientv3.Compare(clientv3.Version("kv/c"), "=", 2)}, true},
		{"version-missing-key-is-0", []clientv3.Cmp{clientv3.Compare(clientv3.Version("kv/missing"), "=", 0)}, true},
		{"version-wrong", []clientv3.Cmp{clientv3.Compare(clientv3.Version("kv/c"), "=", 1)}, false},
		{"create", []clientv3.Cmp{clientv3.Compare(clientv3.CreateRevision("kv/c"), "=", base+3)}, true},
		{"create-greater-false", []clientv3.Cmp{clientv3.Compare(clientv3.CreateRevision("kv/c"), ">", base+3)}, false},
		{"mod", []clientv3.Cmp{clientv3.Compare(clientv3.ModRevision("kv/c"), "=", base+6)}, true},
		{"mod-less-false", []clientv3.Cmp{clientv3.Compare(clientv3.ModRevision("kv/c"), "<", base+6)}, false},
		{"mod-not-equal", []clientv3.Cmp{clientv3.Compare(clientv3.ModRevision("kv/c"), "!=", base+3)}, true},
		{"all-must-hold", []clientv3.Cmp{
			clientv3.Compare(clientv3.Value("kv/a"), "=", "va"),
			clientv3.Compare(clientv3.Version("kv/c"), "=", 1),
		}, false},
	}
	for i, tc := range cases {
		key := "txn/" + strconv.Itoa(i)
		before := currentRev(t, cli)
		resp, err := cli.Txn(bg(t)).If(tc.cmps...).
			Then(clientv3.OpPut(key, "then"), clientv3.OpPut(key+"/2", "then")).
			Else(clientv3.OpGet("kv/b")).Commit()
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if resp.Succeeded != tc.want {
			t.Errorf("%s: succeeded %v, want %v", tc.name, resp.Succeeded, tc.want)
			continue
		}
		v, ok := mustGet(t, cli, key)
		if tc.want {
			// Both puts of one txn share one new revision.
			if !ok || v != "then" || resp.Header.Revision != before+1 || len(resp.Responses) != 2 || resp.Responses[0].GetResponsePut() == nil {
				t.Errorf("%s: then branch: %s=%q (%v), rev %d (before %d), responses %v", tc.name, key, v, ok, resp.Header.Revision, before, resp.Responses)
			}
			r, _ := cli.Get(bg(t), key+"/2")
			if len(r.Kvs) != 1 || r.Kvs[0].ModRevision != before+1 {
				t.Errorf("%s: second put of the txn: %v, want mod revision %d", tc.name, r.Kvs, before+1)
			}
		} else {
			rr := resp.Responses[0].GetResponseRange()
			if ok || rr == nil || len(rr.Kvs) != 1 || string(rr.Kvs[0].Value) != "vb" || resp.Header.Revision != before {
				t.Errorf("%s: else branch: %s present %v, range %v, rev %d (before %d)", tc.name, key, ok, rr, resp.Header.Revision, before)
			}
		}
	}

	// Nested txn: the outer then-branch holds a txn whose own compare picks
	// its branch, plus a get.
	for _, inner := range []struct {
		version int64
		want    string
	}{{2, "inner-then"}, {7, "inner-else"}} {
		resp, err := cli.Txn(bg(t)).If(clientv3.Compare(clientv3.Value("kv/a"), "=", "va")).Then(
			clientv3.OpTxn(
				[]clientv3.Cmp{clientv3.Compare(clientv3.Version("kv/c"), "=", inner.version)},
				[]clientv3.Op{clientv3.OpPut("txn/nested", "inner-then")},
				[]clientv3.Op{clientv3.OpPut("txn/nested", "inner-else")},
			),
			clientv3.OpGet("kv/a"),
		).Commit()
		if err != nil {
			t.Fatalf("nested txn: %v", err)
		}
		if !resp.Succeeded || len(resp.Responses) != 2 {
			t.Fatalf("nested txn: %+v", resp)
		}
		nested := resp.Responses[0].GetResponseTxn()
		if nested == nil || nested.Succeeded != (inner.want == "inner-then") || len(nested.Responses) != 1 || nested.Responses[0].GetResponsePut() == nil {
			t.Fatalf("nested txn response: %+v", nested)
		}
		if rr := resp.Responses[1].GetResponseRange(); rr == nil || len(rr.Kvs) != 1 || string(rr.Kvs[0].Value) != "va" {
			t.Fatalf("get inside the txn: %+v", rr)
		}
		if v, _ := mustGet(t, cli, "txn/nested"); v != inner.want {
			t.Fatalf("txn/nested = %q, want %q", v, inner.want)
		}
	}
}

func testPrevKV(t *testing.T, cli *clientv3.Client) {
	if _, err := cli.Put(bg(t), "pk/1", "one"); err != nil {
		t.Fatal(err)
	}
	put, err := cli.Put(bg(t), "pk/1", "two", clientv3.WithPrevKV())
	if err != nil || put.PrevKv == nil || string(put.PrevKv.Value) != "one" || put.PrevKv.Version != 1 {
		t.Fatalf("put with prev_kv: %v %+v, want prev value one version 1", err, put)
	}
	put, err = cli.Put(bg(t), "pk/new", "x", clientv3.WithPrevKV())
	if err != nil || put.PrevKv != nil {
		t.Fatalf("put of a new key with prev_kv: %v, prev %+v, want none", err, put.PrevKv)
	}
	del, err := cli.Delete(bg(t), "pk/1", clientv3.WithPrevKV())
	if err != nil || del.Deleted != 1 || len(del.PrevKvs) != 1 || string(del.PrevKvs[0].Value) != "two" {
		t.Fatalf("delete with prev_kv: %v %+v", err, del)
	}
	before := currentRev(t, cli)
	del, err = cli.Delete(bg(t), "pk/1")
	if err != nil || del.Deleted != 0 || del.Header.Revision != before {
		t.Fatalf("delete of a missing key: %v %+v; want 0 deleted and revision unchanged at %d", err, del, before)
	}
	if _, err := cli.Put(bg(t), "pk/new2", "y"); err != nil {
		t.Fatal(err)
	}
	del, err = cli.Delete(bg(t), "pk/", clientv3.WithPrefix(), clientv3.WithPrevKV())
	if err != nil || del.Deleted != 2 || len(del.PrevKvs) != 2 || string(del.PrevKvs[0].Key) != "pk/new" || string(del.PrevKvs[1].Value) != "y" {
		t.Fatalf("delete prefix with prev_kv: %v %+v", err, del)
	}
	if r, _ := cli.Get(bg(t), "pk/", clientv3.WithPrefix(), clientv3.WithCountOnly()); r.Count != 0 {
		t.Fatalf("after delete prefix: %d keys left", r.Count)
	}
}

func testKVErrors(t *testing.T, cli *clientv3.Client) {
	cur := currentRev(t, cli)
	if _, err := cli.Get(bg(t), "kv/a", clientv3.WithRev(cur+1000)); !errors.Is(err, rpctypes.ErrFutureRev) {
		t.Errorf("get at future revision: %v, want %v", err, rpctypes.ErrFutureRev)
	}

	// Requests over --max-request-bytes (default 1.5 MiB) are refused by
	// the server with ErrRequestTooLarge; 2 MiB is already over the client's
	// default send limit (and gRPC's receive limit on etcd), which must fail
	// too. A 1 MiB value is fine.
	if _, err := cli.Put(bg(t), "big", strings.Repeat("x", 1<<20)); err != nil {
		t.Errorf("put of a 1 MiB value: %v", err)
	}
	cur = currentRev(t, cli)
	if _, err := cli.Put(bg(t), "big", strings.Repeat("y", 1600<<10)); !errors.Is(err, rpctypes.ErrRequestTooLarge) {
		t.Errorf("put of a 1.6 MiB value: %v, want %v", err, rpctypes.ErrRequestTooLarge)
	}
	if _, err := cli.Put(bg(t), "big", strings.Repeat("z", 2<<20)); err == nil {
		t.Errorf("put of a 2 MiB value succeeded, want an error")
	}
	if v, _ := mustGet(t, cli, "big"); len(v) != 1<<20 {
		t.Errorf("big = %d bytes after refused puts, want the 1 MiB value", len(v))
	}

	ops := make([]clientv3.Op, 129)
	for i := range ops {
		ops[i] = clientv3.OpPut("many/"+strconv.Itoa(i), "x")
	}
	if _, err := cli.Txn(bg(t)).Then(ops...).Commit(); !errors.Is(err, rpctypes.ErrTooManyOps) {
		t.Errorf("txn with 129 ops: %v, want %v", err, rpctypes.ErrTooManyOps)
	}
	_, err := cli.Txn(bg(t)).Then(clientv3.OpPut("dup", "1"), clientv3.OpPut("dup", "2")).Commit()
	if !errors.Is(err, rpctypes.ErrDuplicateKey) {
		t.Errorf("txn putting one key twice: %v, want %v", err, rpctypes.ErrDuplicateKey)
	}
	if after := currentRev(t, cli); after != cur {
		t.Errorf("revision moved from %d to %d after refused requests", cur, after)
	}
	// 128 ops is the default limit and is accepted.
	if r, err := cli.Txn(bg(t)).Then(ops[:128]...).Commit(); err != nil || r.Header.Revision != cur+1 {
		t.Errorf("txn with 128 ops: %v, %v", err, r)
	}

	// Compaction: revisions below the compacted one are gone, the compacted
	// one itself stays readable.
	if _, err := cli.Put(bg(t), "compact/k", "after"); err != nil {
		t.Fatal(err)
	}
	cur = currentRev(t, cli)
	if _, err := cli.Compact(bg(t), cur-1); err != nil {
		t.Fatalf("compact %d: %v", cur-1, err)
	}
	if _, err := cli.Get(bg(t), "kv/a", clientv3.WithRev(cur-2)); !errors.Is(err, rpctypes.ErrCompacted) {
		t.Errorf("get at compacted revision %d: %v, want %v", cur-2, err, rpctypes.ErrCompacted)
	}
	if r, err := cli.Get(bg(t), "kv/a", clientv3.WithRev(cur-1)); err != nil || len(r.Kvs) != 1 {
		t.Errorf("get at the compaction revision %d: %v %v", cur-1, err, r)
	}
	if _, err := cli.Compact(bg(t), cur-2); !errors.Is(err, rpctypes.ErrCompacted) {
		t.Errorf("compact below the compacted revision: %v, want %v", err, rpctypes.ErrCompacted)
	}
	if _, err := cli.Compact(bg(t), cur+100); !errors.Is(err, rpctypes.ErrFutureRev) {
		t.Errorf("compact at a future revision: %v, want %v", err, rpctypes.ErrFutureRev)
	}
	// The connection is still usable after all these errors.
	if _, err := cli.Put(bg(t), "still/ok", "1"); err != nil {
		t.Fatalf("put after errors: %v", err)
	}
}
