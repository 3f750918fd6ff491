package api

import (
	"context"
	"errors"
	"expvar"
	"fmt"
	"net/http"
	"net/http/pprof"
	"slices"
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
	// Limits and MaxRequestBytes are the gRPC server's, which the JSON
	// gateway enforces alike (0 bytes: etcd's default).
	Limits          Limits
	MaxRequestBytes uint
	// ClientCertAuth is --client-cert-auth: gateway calls with a named
	// certificate are then refused while auth is on (gateway_cn.go).
	ClientCertAuth bool
}

// HTTPHandler serves /health, /livez, /readyz, /version, /metrics, the
// JSON gateway under /v3/ and, when enabled, /debug/pprof/ — the endpoints
// etcd serves on client URLs.
func HTTPHandler(m Member, opts HTTPOptions) http.Handler {
	mux := http.NewServeMux()
	type healthJSON struct {
		Health string `json:"health"`
		Reason string `json:"reason"`
	}
	// check performs a read: linearizable unless ?serializable=true, as
	// etcd's /health does, so "healthy" means "can answer a client".
	readRange := func(r *http.Request, serializable bool) error {
		ctx, cancel := context.WithTimeout(r.Context(), opts.Timeout)
		defer cancel()
		_, err := m.Range(ctx, &pb.RangeRequest{Key: []byte("health"), Serializable: serializable, CountOnly: true})
		return err
	}
	// serving is what a linearizable read needs before it is tried.
	serving := func() error {
		if m.Leader() == 0 {
			return cerr.ErrNoLeader
		}
		if !m.IsReady() {
			return errNotReady
		}
		return nil
	}
	check := func(r *http.Request) error {
		if err := serving(); err != nil {
			return err
		}
		// An active alarm makes the member unhealthy, as in etcd, unless
		// the caller excludes it (?exclude=NOSPACE).
		if al, err := m.Alarm(r.Context(), &pb.AlarmRequest{Action: pb.AlarmRequest_GET}); err == nil {
			excluded := r.URL.Query()["exclude"]
			for _, a := range al.Alarms {
				if name := a.Alarm.String(); !slices.Contains(excluded, name) {
					return alarmHealthError(name)
				}
			}
		}
		return readRange(r, r.URL.Query().Get("serializable") == "true")
	}
	mux.HandleFunc("/health", func(w http.ResponseWriter, r *http.Request) {
		if err := check(r); err != nil {
			writeJSON(w, http.StatusServiceUnavailable, healthJSON{"false", reason(err)})
			return
		}
		writeJSON(w, http.StatusOK, healthJSON{"true", ""})
	})
	// /livez and /readyz run etcd's named checks; ?verbose lists each one
	// ("[+]name ok"), ?exclude=name skips one, as etcd's handlers do.
	serializable := namedCheck{"serializable_read", func(r *http.Request) error { return readRange(r, true) }}
	mux.HandleFunc("/livez", func(w http.ResponseWriter, r *http.Request) {
		runChecks(w, r, "livez", []namedCheck{serializable})
	})
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, r *http.Request) {
		runChecks(w, r, "readyz", []namedCheck{
			{"data_corruption", func(r *http.Request) error {
				al, err := m.Alarm(r.Context(), &pb.AlarmRequest{Action: pb.AlarmRequest_GET, Alarm: pb.AlarmType_CORRUPT})
				if err == nil && len(al.Alarms) > 0 {
					return errors.New("alarm activated: CORRUPT")
				}
				return nil
			}},
			serializable,
			{"linearizable_read", func(r *http.Request) error {
				if err := serving(); err != nil {
					return err
				}
				return readRange(r, false)
			}},
		})
	})
	mux.Handle("/debug/vars", expvar.Handler()) // as etcd serves it
	mux.HandleFunc("/version", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, opts.Versions)
	})
	gw := newGateway(m, opts.Limits, opts.MaxRequestBytes)
	mux.Handle("/v3/", gw)
	mux.Handle("/v3beta/", gw)
	registerMembersHTTP(mux, m)
	registerAutopilotHTTP(mux, m)
	registerJoinHTTP(mux, m)
	registerHistoryHTTP(mux, m)
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
	return refuseGatewayCN(m, opts.ClientCertAuth, withCORS(gatewayAuth(m, mux)))
}

// gatewayAuth guards Cadre's member endpoints while auth is on (dry run,
// progress: they judge and report, never change): they need an
// authenticated user's token in "Authorization", as etcd's gateway takes
// it. The etcd gateway under /v3/ checks each call as the gRPC server
// does (gateway.go); /health, /version and /metrics stay open, as in etcd.
func gatewayAuth(m Member, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/cadre/v1/") && m.AuthStore().Enabled() {
			user, err := "", error(nil)
			if tok := r.Header.Get("Authorization"); tok != "" {
				user, err = m.ResolveToken(strings.TrimPrefix(tok, "Bearer "))
			}
			if user == "" || err != nil {
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(http.StatusUnauthorized)
				_, _ = w.Write([]byte(`{"error":"etcdserver: authentication is enabled: pass --user (cadrectl) or an Authorization token from Authenticate","code":16}` + "\n"))
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

// alarmHealthError is the health answer while an alarm is active: etcd's
// reason text, "ALARM NOSPACE".
type alarmHealthError string

func (a alarmHealthError) Error() string { return "ALARM " + string(a) }

// reason is the etcd error text of err, without gRPC's decoration.
func reason(err error) string {
	if a, ok := err.(alarmHealthError); ok {
		return a.Error()
	}
	return status.Convert(togRPC(err)).Message()
}

// namedCheck is one of the checks /livez and /readyz run.
type namedCheck struct {
	name string
	run  func(*http.Request) error
}

// runChecks answers as etcd's /livez and /readyz: 200 "ok" when every check
// not excluded passes, else 503 naming the failures; ?verbose lists all.
func runChecks(w http.ResponseWriter, r *http.Request, path string, checks []namedCheck) {
	q := r.URL.Query()
	_, verbose := q["verbose"]
	excluded := q["exclude"]
	var b strings.Builder
	failed := false
	for _, c := range checks {
		if slices.Contains(excluded, c.name) {
			if verbose {
				fmt.Fprintf(&b, "[+]%s excluded: ok\n", c.name)
			}
			continue
		}
		if err := c.run(r); err != nil {
			failed = true
			fmt.Fprintf(&b, "[-]%s failed: %s\n", c.name, reason(err))
		} else if verbose {
			fmt.Fprintf(&b, "[+]%s ok\n", c.name)
		}
	}
	if failed {
		w.WriteHeader(http.StatusServiceUnavailable)
		fmt.Fprintf(&b, "%s check failed\n", path)
		_, _ = w.Write([]byte(b.String()))
		return
	}
	w.WriteHeader(http.StatusOK)
	b.WriteString("ok\n")
	_, _ = w.Write([]byte(b.String()))
}
