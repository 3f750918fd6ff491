package e2e

import (
	"strconv"
	"testing"

	"github.com/cadrekv/cadre/tests/framework"
)

// TestGatewayKV drives put, range, delete, txn and compaction through the
// JSON gateway (POST /v3/kv/...) and checks every value in etcd's
// encoding: proto field names, int64 as strings, bytes as base64, fields
// at their zero value left out. Writes through the gateway are read back
// with client/v3 and the other way round.
func TestGatewayKV(t *testing.T) {
	t.Parallel()
	c := framework.NewCluster(t, 1, framework.Options{})
	ep := c.Members[0].Endpoint()
	cli := c.Client(t)

	put := gwOK(t, ep, "/v3/kv/put", `{"key":"`+b64("gw/a")+`","value":"`+b64("one")+`"}`)
	rev := jstr(put, "header", "revision")
	if _, err := strconv.ParseInt(rev, 10, 64); err != nil {
		t.Fatalf("put: header.revision %q is not an int64 as a JSON string: %v", rev, put)
	}
	for _, f := range []string{"cluster_id", "member_id", "raft_term"} {
		if jstr(put, "header", f) == "" {
			t.Errorf("put: header.%s missing or not a string: %v", f, put)
		}
	}
	if gr, err := cli.Get(ctxFor(t, opTimeout), "gw/a"); err != nil || len(gr.Kvs) != 1 || string(gr.Kvs[0].Value) != "one" ||
		strconv.FormatInt(gr.Kvs[0].ModRevision, 10) != rev {
		t.Fatalf("client/v3 get gw/a after the gateway put (rev %s): %v %v", rev, gr, err)
	}

	if _, err := cli.Put(ctxFor(t, opTimeout), "gw/b", "two"); err != nil {
		t.Fatal(err)
	}
	rng := gwOK(t, ep, "/v3/kv/range", `{"key":"`+b64("gw/")+`","range_end":"`+b64("gw0")+`"}`)
	if jstr(rng, "count") != "2" || jlen(rng, "kvs") != 2 {
		t.Fatalf("range gw/..gw0: %v, want count \"2\" and two kvs", rng)
	}
	kv := jget(rng, "kvs", "0")
	if jstr(kv, "key") != b64("gw/a") || jstr(kv, "value") != b64("one") || jstr(kv, "create_revision") != rev ||
		jstr(kv, "mod_revision") != rev || jstr(kv, "version") != "1" {
		t.Errorf("range kvs[0] = %v, want key/value base64 of gw/a/one, revisions %s, version \"1\"", kv, rev)
	}
	if jstr(rng, "kvs", "1", "value") != b64("two") {
		t.Errorf("range kvs[1] = %v, want the client/v3 write \"two\"", jget(rng, "kvs", "1"))
	}
	if _, ok := rng["more"]; ok {
		t.Errorf("range: \"more\" present although false: zero values must be left out: %v", rng)
	}
	// The lowerCamel JSON names are accepted too (protobuf's JSON mapping).
	if r := gwOK(t, ep, "/v3/kv/range", `{"key":"`+b64("gw/")+`","rangeEnd":"`+b64("gw0")+`","countOnly":true}`); jstr(r, "count") != "2" || jlen(r, "kvs") != 0 {
		t.Errorf("count-only range with camelCase names: %v", r)
	}

	// Put with prev_kv returns the old pair.
	p2 := gwOK(t, ep, "/v3/kv/put", `{"key":"`+b64("gw/a")+`","value":"`+b64("uno")+`","prev_kv":true}`)
	if jstr(p2, "prev_kv", "value") != b64("one") {
		t.Errorf("put prev_kv: %v, want prev_kv.value base64(one)", p2)
	}

	// Txn: compare value, then success (put + range) or failure.
	txn := `{"compare":[{"key":"` + b64("gw/a") + `","result":"EQUAL","target":"VALUE","value":"` + b64("uno") + `"}],` +
		`"success":[{"request_put":{"key":"` + b64("gw/c") + `","value":"` + b64("three") + `"}},{"request_range":{"key":"` + b64("gw/a") + `"}}],` +
		`"failure":[{"request_range":{"key":"` + b64("gw/b") + `"}}]}`
	tr := gwOK(t, ep, "/v3/kv/txn", txn)
	if tr["succeeded"] != true || jlen(tr, "responses") != 2 {
		t.Fatalf("txn with a true compare: %v, want succeeded and two responses", tr)
	}
	if jget(tr, "responses", "0", "response_put", "header") == nil || jstr(tr, "responses", "1", "response_range", "kvs", "0", "value") != b64("uno") {
		t.Errorf("txn responses: %v, want response_put then response_range with gw/a=uno", jget(tr, "responses"))
	}
	if gr, err := cli.Get(ctxFor(t, opTimeout), "gw/c"); err != nil || len(gr.Kvs) != 1 || string(gr.Kvs[0].Value) != "three" {
		t.Fatalf("client/v3 get gw/c after the txn: %v %v", gr, err)
	}
	tf := gwOK(t, ep, "/v3/kv/txn", `{"compare":[{"key":"`+b64("gw/a")+`","target":"VERSION","result":"GREATER","version":"100"}],"failure":[{"request_range":{"key":"`+b64("gw/b")+`"}}]}`)
	if _, ok := tf["succeeded"]; ok || jstr(tf, "responses", "0", "response_range", "kvs", "0", "value") != b64("two") {
		t.Errorf("txn with a false compare: %v, want no \"succeeded\" (false is left out) and the failure range", tf)
	}
	// An op with no request (a misspelt field is ignored, leaving it
	// empty) is refused, as etcd refuses it.
	gwWantError(t, gwPost(t, ep, "/v3/kv/txn", `{"success":[{"RequestPut":{"key":"`+b64("gw/x")+`"}}]}`),
		400, 3, "etcdserver: key not found")

	// Delete with prev_kv.
	del := gwOK(t, ep, "/v3/kv/deleterange", `{"key":"`+b64("gw/b")+`","prev_kv":true}`)
	if jstr(del, "deleted") != "1" || jstr(del, "prev_kvs", "0", "value") != b64("two") {
		t.Errorf("deleterange gw/b: %v, want deleted \"1\" and prev_kvs[0].value base64(two)", del)
	}
	if gr, err := cli.Get(ctxFor(t, opTimeout), "gw/b"); err != nil || len(gr.Kvs) != 0 {
		t.Errorf("client/v3 get gw/b after the gateway delete: %v %v, want nothing", gr, err)
	}

	// Compaction: then the old revision is gone.
	cur := jstr(gwOK(t, ep, "/v3/kv/range", `{"key":"`+b64("gw/a")+`"}`), "header", "revision")
	if r := gwOK(t, ep, "/v3/kv/compaction", `{"revision":"`+cur+`","physical":true}`); jget(r, "header") == nil {
		t.Errorf("compaction: %v, want a header", r)
	}
	gwWantError(t, gwPost(t, ep, "/v3/kv/range", `{"key":"`+b64("gw/a")+`","revision":"`+rev+`"}`),
		400, 11, "etcdserver: mvcc: required revision has been compacted")
	gwWantError(t, gwPost(t, ep, "/v3/kv/compaction", `{"revision":"1000000"}`),
		400, 11, "etcdserver: mvcc: required revision is a future revision")
}
