package api

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/cadrekv/cadre/internal/auth"
	"github.com/cadrekv/cadre/internal/ui"
)

// dashFake is a member that answers only what the dashboard endpoints ask.
type dashFake struct {
	Member // nil: any other call panics, which fails the test
	st     *auth.Store
	d      *ui.Dashboard
	err    error
}

func (f *dashFake) AuthStore() *auth.Store { return f.st }
func (f *dashFake) Dashboard(context.Context) (*ui.Dashboard, error) {
	return f.d, f.err
}
func (f *dashFake) Authenticate(_ context.Context, name, password string) (string, error) {
	if name == "root" && password == "pw" {
		return "tok", nil
	}
	return "", auth.ErrAuthFailed
}

func sampleDashboard() *ui.Dashboard {
	ft := 1
	return &ui.Dashboard{
		Time: "2026-01-02T03:04:05Z", ClusterID: "00000000000000c1", Member: "0000000000000002", MemberName: "b",
		Leader: "0000000000000001", LeaderName: "a", Term: 3, Commit: 42, FailureTolerance: &ft, Quorum: 2,
		Members: []ui.Member{
			{ID: "0000000000000001", Name: "a", PeerURLs: []string{"http://127.0.0.1:1"}, ClientURLs: []string{}, Role: "voter", Started: true, IsLeader: true, Health: "healthy", Activity: "the leader", Match: 42},
			{ID: "0000000000000003", PeerURLs: []string{"http://127.0.0.1:3"}, ClientURLs: []string{}, Role: "learner", Health: "unreachable", Activity: "not connected",
				Snapshot: &ui.Snapshot{BytesSent: 10, BytesTotal: 100}},
		},
		Removed: []string{"0000000000000009"},
		DB:      ui.DB{Size: 1 << 20, SizeInUse: 1 << 19, Quota: 2 << 30},
		Alarms:  []ui.Alarm{{Member: "0000000000000001", MemberName: "a", Alarm: "NOSPACE"}},
	}
}

// TestDashboardJSONShape pins the field names the page (internal/ui/assets/app.js) reads.
func TestDashboardJSONShape(t *testing.T) {
	h := HTTPHandler(&dashFake{st: auth.New(), d: sampleDashboard()}, HTTPOptions{})
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/cadre/v1/dashboard", nil))
	if rec.Code != http.StatusOK || !strings.HasPrefix(rec.Header().Get("Content-Type"), "application/json") {
		t.Fatalf("GET /cadre/v1/dashboard: %d %q: %s", rec.Code, rec.Header().Get("Content-Type"), rec.Body)
	}
	var got map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"time", "clusterID", "member", "memberName", "leader", "leaderName", "term", "commit",
		"failureTolerance", "quorum", "members", "removed", "db", "alarms"} {
		if _, ok := got[k]; !ok {
			t.Errorf("dashboard JSON lacks %q: %s", k, rec.Body)
		}
	}
	members := got["members"].([]any)
	if len(members) != 2 {
		t.Fatalf("members: %v", members)
	}
	for _, k := range []string{"id", "name", "peerURLs", "clientURLs", "role", "started", "isLeader", "health", "activity", "match", "lag"} {
		if _, ok := members[0].(map[string]any)[k]; !ok {
			t.Errorf("member JSON lacks %q: %v", k, members[0])
		}
	}
	if _, ok := members[0].(map[string]any)["snapshot"]; ok {
		t.Errorf("a member with no snapshot in flight has one: %v", members[0])
	}
	snap := members[1].(map[string]any)["snapshot"].(map[string]any)
	if snap["bytesSent"] != 10.0 || snap["bytesTotal"] != 100.0 {
		t.Errorf("snapshot: %v", snap)
	}
	db := got["db"].(map[string]any)
	if db["size"] != float64(1<<20) || db["sizeInUse"] != float64(1<<19) || db["quota"] != float64(2<<30) {
		t.Errorf("db: %v", db)
	}
	if a := got["alarms"].([]any)[0].(map[string]any); a["alarm"] != "NOSPACE" || a["member"] != "0000000000000001" {
		t.Errorf("alarms: %v", a)
	}

	// A member that cannot answer: 503 with the reason, as the page shows it.
	h = HTTPHandler(&dashFake{st: auth.New(), err: errors.New("boom")}, HTTPOptions{})
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/cadre/v1/dashboard", nil))
	if rec.Code != http.StatusServiceUnavailable || !strings.Contains(rec.Body.String(), "boom") {
		t.Errorf("failing member: %d %s", rec.Code, rec.Body)
	}
}

func TestDashboardPageAndLogin(t *testing.T) {
	h := HTTPHandler(&dashFake{st: auth.New(), d: sampleDashboard()}, HTTPOptions{})
	get := func(path string) *httptest.ResponseRecorder {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
		return rec
	}
	if rec := get("/ui"); rec.Code != http.StatusMovedPermanently || rec.Header().Get("Location") != "/ui/" {
		t.Errorf("/ui: %d to %q, want a redirect to /ui/", rec.Code, rec.Header().Get("Location"))
	}
	if rec := get("/ui/"); rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), `<script src="app.js"`) {
		t.Errorf("/ui/: %d %s", rec.Code, rec.Body)
	}
	if rec := get("/ui/app.js"); rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), "/cadre/v1/dashboard") {
		t.Errorf("/ui/app.js: %d", rec.Code)
	}

	login := func(body string) *httptest.ResponseRecorder {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("POST", "/ui/authenticate", strings.NewReader(body)))
		return rec
	}
	if rec := login(`{"name":"root","password":"pw"}`); rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), `"token":"tok"`) {
		t.Errorf("login: %d %s", rec.Code, rec.Body)
	}
	if rec := login(`{"name":"root","password":"no"}`); rec.Code != http.StatusUnauthorized || !strings.Contains(rec.Body.String(), "authentication failed") {
		t.Errorf("bad password: %d %s", rec.Code, rec.Body)
	}
	if rec := login(`not json`); rec.Code != http.StatusBadRequest {
		t.Errorf("bad body: %d %s", rec.Code, rec.Body)
	}

	// --disable-dashboard: none of it is served.
	h = HTTPHandler(&dashFake{st: auth.New(), d: sampleDashboard()}, HTTPOptions{DisableDashboard: true})
	for _, p := range []string{"/ui", "/ui/", "/ui/app.js", "/cadre/v1/dashboard"} {
		if rec := get(p); rec.Code != http.StatusNotFound {
			t.Errorf("%s with the dashboard disabled: %d, want 404", p, rec.Code)
		}
	}
}
