package api

import (
	"encoding/json"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"google.golang.org/grpc/metadata"
)

// etcdGatewayPaths are the paths of etcd v3.7.3's gateway
// (api/etcdserverpb/gw/rpc.pb.gw.go), all POST.
var etcdGatewayPaths = []string{
	"/v3/kv/range", "/v3/kv/put", "/v3/kv/deleterange", "/v3/kv/txn", "/v3/kv/compaction",
	"/v3/watch",
	"/v3/lease/grant", "/v3/lease/revoke", "/v3/kv/lease/revoke", "/v3/lease/keepalive",
	"/v3/lease/timetolive", "/v3/kv/lease/timetolive", "/v3/lease/leases", "/v3/kv/lease/leases",
	"/v3/cluster/member/add", "/v3/cluster/member/remove", "/v3/cluster/member/update",
	"/v3/cluster/member/list", "/v3/cluster/member/promote",
	"/v3/maintenance/alarm", "/v3/maintenance/status", "/v3/maintenance/defragment",
	"/v3/maintenance/hash", "/v3/maintenance/hashkv", "/v3/maintenance/snapshot",
	"/v3/maintenance/transfer-leadership", "/v3/maintenance/downgrade",
	"/v3/auth/enable", "/v3/auth/disable", "/v3/auth/status", "/v3/auth/authenticate",
	"/v3/auth/user/add", "/v3/auth/user/get", "/v3/auth/user/list", "/v3/auth/user/delete",
	"/v3/auth/user/changepw", "/v3/auth/user/grant", "/v3/auth/user/revoke",
	"/v3/auth/role/add", "/v3/auth/role/get", "/v3/auth/role/list", "/v3/auth/role/delete",
	"/v3/auth/role/grant", "/v3/auth/role/revoke",
}

func TestGatewayRoutesAreEtcds(t *testing.T) {
	var got []string
	for p := range gwRoutes(nil, Limits{}, 0) {
		got = append(got, p)
	}
	want := slices.Clone(etcdGatewayPaths)
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("gateway paths\n got %v\nwant %v", got, want)
	}
}

// TestGatewayRouting: what grpc-gateway answers before any call: 404 for
// an unknown path, 501 for another method than POST, as JSON statuses.
func TestGatewayRouting(t *testing.T) {
	g := newGateway(nil, Limits{}, 0)
	cases := []struct {
		method, path string
		status       int
		body         string
	}{
		{"GET", "/v3/kv/range", 501, `{"code":12,"message":"Method Not Allowed"}`},
		{"PUT", "/v3beta/watch", 501, `{"code":12,"message":"Method Not Allowed"}`},
		{"POST", "/v3/kv/range/", 404, `{"code":5,"message":"Not Found"}`},
		{"POST", "/v3/nothing", 404, `{"code":5,"message":"Not Found"}`},
	}
	for _, c := range cases {
		w := httptest.NewRecorder()
		g.ServeHTTP(w, httptest.NewRequest(c.method, c.path, nil))
		if w.Code != c.status || compact(t, w.Body.String()) != c.body || w.Header().Get("Content-Type") != "application/json" {
			t.Errorf("%s %s: %d %s (%s), want %d %s", c.method, c.path, w.Code, w.Body, w.Header().Get("Content-Type"), c.status, c.body)
		}
	}
}

func compact(t *testing.T, s string) string {
	var v any
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		t.Fatalf("not JSON: %q", s)
	}
	b, _ := json.Marshal(v)
	return string(b)
}

// TestGatewayDecode: an empty body is the zero request, unknown fields
// are dropped, bad JSON and oversize bodies are refused with the codes
// etcd's gateway gives.
func TestGatewayDecode(t *testing.T) {
	g := newGateway(nil, Limits{}, 1024) // 1 KiB + 512 KiB of gRPC room
	decode := func(body string) (*pb.PutRequest, error) {
		var m pb.PutRequest
		err := g.decodeBody(httptest.NewRequest("POST", "/v3/kv/put", strings.NewReader(body)), &m)
		return &m, err
	}
	if m, err := decode(""); err != nil || len(m.Key) != 0 {
		t.Errorf("empty body: %v %v, want the zero request", m, err)
	}
	if m, err := decode(`{"key":"YQ==","prev_kv":true,"nope":{"x":1}}`); err != nil || string(m.Key) != "a" || !m.PrevKv {
		t.Errorf("unknown field: %v %v, want key a, prev_kv, the field dropped", m, err)
	}
	for body, want := range map[string]string{
		`{"key":`: "rpc error: code = InvalidArgument desc = unexpected EOF",
		`[1]`:     "rpc error: code = InvalidArgument desc = proto:",
		`{"value":"` + strings.Repeat("A", 800*1024) + `"}`:   "rpc error: code = ResourceExhausted desc = grpc: received message larger than max (614404 vs. 525312)",
		`{"value":"` + strings.Repeat("A", 4*525312+4) + `"}`: "rpc error: code = ResourceExhausted desc = etcdserver: request body larger than 2101248 bytes",
	} {
		if _, err := decode(body); err == nil || !strings.HasPrefix(err.Error(), want) {
			t.Errorf("body %.40q: %v, want %q", body, err, want)
		}
	}
}

func TestGatewayContext(t *testing.T) {
	r := httptest.NewRequest("POST", "/v3/kv/range", nil)
	r.Header.Set("Authorization", "Bearer tok")
	r.Header.Set("Grpc-Metadata-Token", "tok2")
	r.Header.Set("Grpc-Timeout", "2S")
	r.Header.Set("Cookie", "not passed on")
	ctx, cancel, err := gwContext(r)
	if err != nil {
		t.Fatal(err)
	}
	defer cancel()
	md, _ := metadata.FromIncomingContext(ctx)
	if md.Get("authorization")[0] != "Bearer tok" || md.Get("token")[0] != "tok2" || len(md.Get("cookie")) != 0 {
		t.Errorf("metadata %v, want authorization and token only", md)
	}
	if dl, ok := ctx.Deadline(); !ok || time.Until(dl) > 2*time.Second {
		t.Errorf("deadline %v %v, want within 2s", dl, ok)
	}
	r.Header.Set("Grpc-Timeout", "2 seconds")
	if _, _, err := gwContext(r); err == nil || !strings.Contains(err.Error(), "invalid grpc-timeout: 2 seconds") {
		t.Errorf("bad Grpc-Timeout: %v, want invalid grpc-timeout", err)
	}
	for s, want := range map[string]time.Duration{"5S": 5 * time.Second, "200m": 200 * time.Millisecond, "1H": time.Hour, "7n": 7} {
		if d, ok := parseGRPCTimeout(s); !ok || d != want {
			t.Errorf("parseGRPCTimeout(%q) = %v %v, want %v", s, d, ok, want)
		}
	}
	for _, s := range []string{"", "S", "5", "5s", "-"} {
		if _, ok := parseGRPCTimeout(s); ok {
			t.Errorf("parseGRPCTimeout(%q) accepted", s)
		}
	}
}
