package e2e

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/cadrekv/cadre/tests/framework"
)

// TestGatewayAuth sets auth up through the gateway alone (users, roles,
// a permission, enable), then: a request without a token is refused with
// etcd's "user name is empty", a bad token with 401, a token from
// /v3/auth/authenticate in the Authorization header is accepted (raw or
// "Bearer "), and a user's token is held to its role's permissions.
func TestGatewayAuth(t *testing.T) {
	t.Parallel()
	c := framework.NewCluster(t, 1, framework.Options{})
	ep := c.Members[0].Endpoint()

	for _, step := range []struct{ path, body string }{
		{"/v3/auth/user/add", `{"name":"root","password":"r00t-pw"}`},
		{"/v3/auth/role/add", `{"name":"root"}`},
		{"/v3/auth/user/grant", `{"user":"root","role":"root"}`},
		{"/v3/auth/user/add", `{"name":"reader","password":"read-pw"}`},
		{"/v3/auth/role/add", `{"name":"pub"}`},
		{"/v3/auth/role/grant", `{"name":"pub","perm":{"permType":"READ","key":"` + b64("/pub/") + `","range_end":"` + b64("/pub0") + `"}}`},
		{"/v3/auth/user/grant", `{"user":"reader","role":"pub"}`},
	} {
		gwOK(t, ep, step.path, step.body)
	}
	if u := gwOK(t, ep, "/v3/auth/user/get", `{"name":"reader"}`); jstr(u, "roles", "0") != "pub" {
		t.Errorf("user get reader: %v, want roles [pub]", u)
	}
	if r := gwOK(t, ep, "/v3/auth/role/get", `{"role":"pub"}`); jstr(r, "perm", "0", "key") != b64("/pub/") || jstr(r, "perm", "0", "permType") != "" {
		t.Errorf("role get pub: %v, want perm[0] key base64(/pub/), permType READ (the zero value, left out)", r)
	}
	gwWantError(t, gwPost(t, ep, "/v3/auth/user/get", `{"name":"nobody"}`), 400, 9, "etcdserver: user name not found")
	gwOK(t, ep, "/v3/auth/enable", `{}`)
	if s := gwOK(t, ep, "/v3/auth/status", `{}`); s["enabled"] != true {
		t.Errorf("auth status (open to anyone) after enable: %v, want enabled", s)
	}

	put := `{"key":"` + b64("/pub/k") + `","value":"` + b64("v") + `"}`
	gwWantError(t, gwPost(t, ep, "/v3/kv/put", put), 400, 3, "etcdserver: user name is empty")
	bad := gwPost(t, ep, "/v3/kv/put", put, "Authorization: not-a-token")
	gwWantError(t, bad, 401, 16, "etcdserver: invalid auth token")
	gwWantError(t, gwPost(t, ep, "/v3/auth/authenticate", `{"name":"root","password":"wrong"}`),
		400, 3, "etcdserver: authentication failed, invalid user ID or password")

	rootTok := gwToken(t, ep, "root", "r00t-pw")
	gwOK(t, ep, "/v3/kv/put", put, "Authorization: "+rootTok)
	if r := gwOK(t, ep, "/v3/kv/range", `{"key":"`+b64("/pub/k")+`"}`, "Authorization: Bearer "+rootTok); jstr(r, "kvs", "0", "value") != b64("v") {
		t.Errorf("range with a Bearer token: %v, want /pub/k=v", r)
	}

	readerTok := gwToken(t, ep, "reader", "read-pw")
	if r := gwOK(t, ep, "/v3/kv/range", `{"key":"`+b64("/pub/k")+`"}`, "Authorization: "+readerTok); jstr(r, "count") != "1" {
		t.Errorf("reader's range in its permission: %v, want count \"1\"", r)
	}
	gwWantError(t, gwPost(t, ep, "/v3/kv/put", put, "Authorization: "+readerTok), 403, 7, "etcdserver: permission denied")
	gwWantError(t, gwPost(t, ep, "/v3/auth/user/list", `{}`, "Authorization: "+readerTok), 403, 7, "etcdserver: permission denied")

	// A watch stream opens without a token, as in etcd; each watch is
	// then cancelled with the reason.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, ep+"/v3/watch", strings.NewReader(`{"create_request":{"key":"`+b64("/pub/k")+`"}}`))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	w := jget(gwNext(t, gwLines(t, resp.Body), "watch without a token"), "result")
	if resp.StatusCode != http.StatusOK || jget(w, "canceled") != true || !strings.Contains(jstr(w, "cancel_reason"), "etcdserver: user name is empty") {
		t.Errorf("watch without a token: HTTP %d %v, want a created and canceled watch, reason \"user name is empty\"", resp.StatusCode, w)
	}

	gwOK(t, ep, "/v3/auth/disable", `{}`, "Authorization: "+rootTok)
	gwOK(t, ep, "/v3/kv/put", put) // no token needed any more
}

// gwToken signs in through /v3/auth/authenticate.
func gwToken(t testing.TB, ep, user, password string) string {
	t.Helper()
	a := gwOK(t, ep, "/v3/auth/authenticate", `{"name":"`+user+`","password":"`+password+`"}`)
	tok := jstr(a, "token")
	if tok == "" {
		t.Fatalf("authenticate %s: %v, want a token", user, a)
	}
	return tok
}

// TestGatewayClientCertCN: over TLS with --client-cert-auth the gateway
// answers a named client certificate until auth is on; from then on it
// refuses it with etcd's 400, since the gateway would ignore the
// CommonName that gRPC takes as the user.
func TestGatewayClientCertCN(t *testing.T) {
	t.Parallel()
	ct := framework.NewClusterTLS(t) // its client certificate has CN "root"
	c := framework.NewCluster(t, 1, framework.Options{TLS: ct})
	ep := c.Members[0].Endpoint()
	hc := &http.Client{Timeout: 15 * time.Second, Transport: &http.Transport{TLSClientConfig: ct.CA.ClientTLS(t, ct.ClientCert, ct.ClientKey)}}
	post := func(path, body string) (int, string) {
		t.Helper()
		resp, err := hc.Post(ep+path, "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatalf("POST %s over TLS: %v", path, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := post("/v3/kv/put", `{"key":"`+b64("cn")+`","value":"`+b64("v")+`"}`); code != http.StatusOK {
		t.Fatalf("put over TLS with auth off: %d %s, want 200", code, body)
	}
	// Over HTTP/2 too (what curl negotiates on https): the JSON gateway,
	// not the gRPC server, answers a request that is not gRPC.
	h2 := &http.Client{Timeout: 15 * time.Second, Transport: &http.Transport{ForceAttemptHTTP2: true, TLSClientConfig: ct.CA.ClientTLS(t, ct.ClientCert, ct.ClientKey)}}
	resp, err := h2.Post(ep+"/v3/kv/range", "application/json", strings.NewReader(`{"key":"`+b64("cn")+`"}`))
	if err != nil {
		t.Fatalf("range over HTTP/2: %v", err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.ProtoMajor != 2 || resp.StatusCode != http.StatusOK || !strings.Contains(string(b), `"value":"`+b64("v")+`"`) {
		t.Errorf("range over HTTP/2: %s %d %s, want HTTP/2 200 with cn=v", resp.Proto, resp.StatusCode, b)
	}
	for _, args := range [][]string{{"user", "add", "root", "--new-user-password", rootPW}, {"auth", "enable"}} {
		if res := c.Etcdctl(t, args...); res.Code != 0 {
			t.Fatalf("etcdctl %v: %s", args, res)
		}
	}
	code, body := post("/v3/kv/range", `{"key":"`+b64("cn")+`"}`)
	if code != http.StatusBadRequest || body != "CommonName of client sending a request against gateway will be ignored and not used as expected\n" {
		t.Errorf("range with a named certificate, auth on: %d %q, want etcd's 400 about the CommonName", code, body)
	}
}
