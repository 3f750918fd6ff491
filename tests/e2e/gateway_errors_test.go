package e2e

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/cadrekv/cadre/tests/framework"
)

// TestGatewayErrors: bad input gets etcd's gateway answers, status and
// body alike: malformed JSON, a field of the wrong type, an unknown path,
// a GET, an empty key, an unknown lease, a request too large; unknown
// fields are ignored and an empty body is an empty request.
func TestGatewayErrors(t *testing.T) {
	t.Parallel()
	c := framework.NewCluster(t, 1, framework.Options{})
	ep := c.Members[0].Endpoint()

	gwWantError(t, gwPost(t, ep, "/v3/kv/put", `{"key":`), 400, 3, "unexpected EOF")
	gwWantError(t, gwPost(t, ep, "/v3/kv/range", `not json`), 400, 3, "invalid character 'o' in literal null (expecting 'u')")
	// protojson's errors change their spacing from one binary to the next
	// on purpose (a space or a no-break space after "proto:"), etcd's too.
	wrongType := gwPost(t, ep, "/v3/kv/range", `{"key":"!!"}`)
	msg := strings.ReplaceAll(jstr(wrongType.JSON, "message"), "\u00a0", " ")
	if wrongType.Status != 400 || jnum(wrongType.JSON, "code") != 3 || msg != `proto: (line 1:8): invalid value for bytes field key: "!!"` {
		t.Errorf("a key that is not base64: %v, want HTTP 400, code 3 and protojson's message", wrongType)
	}
	gwWantError(t, gwPost(t, ep, "/v3/kv/range", ``), 400, 3, "etcdserver: key is not provided")
	gwWantError(t, gwPost(t, ep, "/v3/kv/put", `{"value":"`+b64("v")+`"}`), 400, 3, "etcdserver: key is not provided")
	gwWantError(t, gwPost(t, ep, "/v3/kv/nothing", `{}`), 404, 5, "Not Found")
	gwWantError(t, gwPost(t, ep, "/v3/lease/revoke", `{"ID":"4242"}`), 404, 5, "etcdserver: requested lease not found")
	gwWantError(t, gwPost(t, ep, "/v3/kv/put", `{"key":"`+b64("k")+`","lease":"4242"}`), 404, 5, "etcdserver: requested lease not found")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	gwWantError(t, gwDo(t, ctx, http.MethodGet, ep+"/v3/kv/range", nil), 501, 12, "Method Not Allowed")

	// Unknown fields are ignored, as etcd's gateway discards them.
	if r := gwOK(t, ep, "/v3/kv/put", `{"key":"`+b64("gwe/k")+`","value":"`+b64("v")+`","no_such_field":[1,2]}`); jget(r, "header") == nil {
		t.Errorf("put with an unknown field: %v", r)
	}
	// The old /v3beta/ prefix still answers.
	if r := gwOK(t, ep, "/v3beta/kv/range", `{"key":"`+b64("gwe/k")+`"}`); jstr(r, "kvs", "0", "value") != b64("v") {
		t.Errorf("range through /v3beta/: %v", r)
	}

	// A request larger than --max-request-bytes plus gRPC's envelope
	// (1.5 MiB + 512 KiB by default) is refused as gRPC refuses it.
	big := strings.Repeat("x", 3<<20)
	a := gwPost(t, ep, "/v3/kv/put", `{"key":"`+b64("gwe/big")+`","value":"`+b64(big)+`"}`)
	if a.Status != http.StatusTooManyRequests || jnum(a.JSON, "code") != 8 ||
		!strings.HasPrefix(jstr(a.JSON, "message"), "grpc: received message larger than max (") {
		t.Errorf("a 3 MiB put: %.300s, want HTTP 429 {\"code\":8,\"message\":\"grpc: received message larger than max (...)\"}", a.String())
	}
	// Just above --max-request-bytes but within the envelope: refused by
	// the server itself.
	mid := strings.Repeat("y", 1600*1024)
	gwWantError(t, gwPost(t, ep, "/v3/kv/put", `{"key":"`+b64("gwe/mid")+`","value":"`+b64(mid)+`"}`),
		400, 3, "etcdserver: request is too large")
}
