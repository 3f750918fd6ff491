package api

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/pprof"
	"strings"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"google.golang.org/grpc/status"

	"github.com/cadrekv/cadre/internal/cerr"
)

// Versions is what /version reports.
type Versions struct {
	Server  string `json:"etcdserver"`
	Cluster string `json:"etcdcluster"`
	Cadre   string `json:"cadre"`
}

// HTTPOptions configures the HTTP endpoints served on the client URLs.
type HTTPOptions struct {
	Versions    Versions
	Metrics     http.Handler
	EnablePprof bool
	// DisableDashboard turns off /ui/ and /cadre/v1/dashboard.
	DisableDashboard bool
	// Timeout bounds the read that /health and /readyz perform.
	Timeout time.Duration
}

// HTTPHandler serves /health, /livez, /readyz, /version, /metrics and,
// when enabled, /debug/pprof/ — the endpoints etcd serves on client URLs.
func HTTPHandler(m Member, opts HTTPOptions) http.Handler {
	mux := http.NewServeMux()
	writeJSON := func(w http.ResponseWriter, code int, v any) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		_ = json.NewEncoder(w).Encode(v)
	}
	type healthJSON struct {
		Health string `json:"health"`
		Reason string `json:"reason"`
	}
	// check performs a read: linearizable unless ?serializable=true, as
	// etcd's /health does, so "healthy" means "can answer a client".
	check := func(r *http.Request) error {
		if m.Leader() == 0 {
			return cerr.ErrNoLeader
		}
		if !m.IsReady() {
			return errNotReady
		}
		ctx, cancel := context.WithTimeout(r.Context(), opts.Timeout)
		defer cancel()
		_, err := m.Range(ctx, &pb.RangeRequest{Key: []byte("health"), Serializable: r.URL.Query().Get("serializable") == "true", CountOnly: true})
		return err
	}
	mux.HandleFunc("/health", func(w http.ResponseWriter, r *http.Request) {
		if err := check(r); err != nil {
			writeJSON(w, http.StatusServiceUnavailable, healthJSON{"false", reason(err)})
			return
		}
		writeJSON(w, http.StatusOK, healthJSON{"true", ""})
	})
	mux.HandleFunc("/livez", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, r *http.Request) {
		if err := check(r); err != nil {
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write([]byte("[-]linearizable_read failed: " + reason(err) + "\nreadyz check failed\n"))
			return
		}
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("/version", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, opts.Versions)
	})
	registerGateway(mux, m)
	registerMembersHTTP(mux, m)
	registerAutopilotHTTP(mux, m)
	if !opts.DisableDashboard {
		registerDashboardHTTP(mux, m) // the /ui/ page and its data
	}
	if opts.Metrics != nil {
		mux.Handle("/metrics", opts.Metrics)
	}
	if opts.EnablePprof {
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	return gatewayAuth(m, mux)
}

// gatewayAuth guards the HTTP APIs while auth is on. The JSON gateway is
// closed (decision: it would need every gRPC check again; use gRPC with a
// token or a client certificate). Cadre's member endpoints (dry run,
// progress: they judge and report, never change) need an authenticated
// user's token in "Authorization", as etcd's gateway takes it. /health,
// /version and /metrics stay open, as in etcd.
func gatewayAuth(m Member, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/cadre/v1/") && m.AuthStore().Enabled() {
			user, err := "", error(nil)
			if tok := r.Header.Get("Authorization"); tok != "" {
				user, err = m.ResolveToken(tok)
			}
			if user == "" || err != nil {
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(http.StatusUnauthorized)
				_, _ = w.Write([]byte(`{"error":"etcdserver: authentication is enabled: pass --user (cadrectl) or an Authorization token from Authenticate","code":16}` + "\n"))
				return
			}
		}
		if strings.HasPrefix(r.URL.Path, "/v3/") && m.AuthStore().Enabled() {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = w.Write([]byte(`{"error":"etcdserver: authentication is enabled: the HTTP gateway is closed; use the gRPC API with a user or a client certificate","code":16}` + "\n"))
			return
		}
		next.ServeHTTP(w, r)
	})
}

// reason is the etcd error text of err, without gRPC's decoration.
func reason(err error) string { return status.Convert(togRPC(err)).Message() }
