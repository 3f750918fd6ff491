package e2e

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cadrekv/cadre/tests/framework"
)

// TestGatewayLease: grant, attach a key, time-to-live with keys, keep
// alive (a stream: one {"result":...} line per request), list, revoke,
// through /v3/lease/* and the /v3/kv/lease/* aliases.
func TestGatewayLease(t *testing.T) {
	t.Parallel()
	c := framework.NewCluster(t, 1, framework.Options{})
	ep := c.Members[0].Endpoint()
	cli := c.Client(t)

	const id = "7587873512413396737" // a caller-chosen ID, above 2^53: must stay exact
	g := gwOK(t, ep, "/v3/lease/grant", `{"ID":"`+id+`","TTL":"60"}`)
	if jstr(g, "ID") != id || jstr(g, "TTL") != "60" {
		t.Fatalf("grant: %v, want ID %q and TTL \"60\" (int64 as JSON strings)", g, id)
	}
	gwOK(t, ep, "/v3/kv/put", `{"key":"`+b64("gwl/k")+`","value":"`+b64("v")+`","lease":"`+id+`"}`)

	ttl := gwOK(t, ep, "/v3/lease/timetolive", `{"ID":"`+id+`","keys":true}`)
	if jstr(ttl, "grantedTTL") != "60" || jstr(ttl, "keys", "0") != b64("gwl/k") || jstr(ttl, "ID") != id {
		t.Errorf("timetolive: %v, want grantedTTL \"60\" and keys [base64(gwl/k)]", ttl)
	}
	if left, err := strconv.Atoi(jstr(ttl, "TTL")); err != nil || left <= 0 || left > 60 {
		t.Errorf("timetolive: TTL %q, want a number of seconds up to 60", jstr(ttl, "TTL"))
	}
	if a := gwOK(t, ep, "/v3/kv/lease/timetolive", `{"ID":"`+id+`"}`); jstr(a, "grantedTTL") != "60" || jget(a, "keys") != nil {
		t.Errorf("timetolive through the /v3/kv alias without keys: %v", a)
	}

	ka := gwPost(t, ep, "/v3/lease/keepalive", `{"ID":"`+id+`"}`)
	if ka.Status != http.StatusOK || strings.Count(ka.Raw, "\n") != 1 {
		t.Fatalf("keepalive: %v, want 200 and one line", ka)
	}
	if jstr(ka.JSON, "result", "ID") != id || jstr(ka.JSON, "result", "TTL") != "60" {
		t.Errorf("keepalive: %v, want {\"result\":{...\"ID\":%q,\"TTL\":\"60\"}}", ka, id)
	}
	// Two requests in one body: two answers, in order; a lease that does
	// not exist answers TTL 0 (left out), not an error.
	ka2 := gwPost(t, ep, "/v3/lease/keepalive", `{"ID":"`+id+`"}`+"\n"+`{"ID":"12345"}`)
	lines := strings.Split(strings.TrimSpace(ka2.Raw), "\n")
	if ka2.Status != http.StatusOK || len(lines) != 2 || !strings.Contains(lines[0], `"TTL":"60"`) ||
		!strings.Contains(lines[1], `"ID":"12345"`) || strings.Contains(lines[1], `"TTL"`) {
		t.Errorf("keepalive of a live and an unknown lease: %v, want two lines: TTL 60, then ID 12345 without TTL", ka2)
	}

	for _, path := range []string{"/v3/lease/leases", "/v3/kv/lease/leases"} {
		l := gwOK(t, ep, path, `{}`)
		found := false
		for i := range jlen(l, "leases") {
			found = found || jstr(l, "leases", strconv.Itoa(i), "ID") == id
		}
		if !found {
			t.Errorf("%s: %v, want the lease %s listed", path, l, id)
		}
	}

	gwOK(t, ep, "/v3/kv/lease/revoke", `{"ID":"`+id+`"}`)
	if gr, err := cli.Get(ctxFor(t, opTimeout), "gwl/k"); err != nil || len(gr.Kvs) != 0 {
		t.Errorf("client/v3 get of the leased key after revoke: %v %v, want it gone", gr, err)
	}
	if a := gwOK(t, ep, "/v3/lease/timetolive", `{"ID":"`+id+`"}`); jstr(a, "TTL") != "-1" {
		t.Errorf("timetolive of a revoked lease: %v, want TTL \"-1\"", a)
	}
	gwWantError(t, gwPost(t, ep, "/v3/lease/revoke", `{"ID":"`+id+`"}`), 404, 5, "etcdserver: requested lease not found")

	// A lease granted through client/v3 is kept alive through the gateway.
	lr, err := cli.Grant(ctxFor(t, opTimeout), 30)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	a := gwDo(t, ctx, http.MethodPost, ep+"/v3/lease/keepalive", strings.NewReader(`{"ID":`+strconv.FormatInt(int64(lr.ID), 10)+`}`))
	if jstr(a.JSON, "result", "TTL") != "30" {
		t.Errorf("keepalive (numeric ID) of a client/v3 lease: %v, want TTL \"30\"", a)
	}
}
