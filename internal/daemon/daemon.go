// Package daemon assembles a complete member: the server, the etcd gRPC
// API and the HTTP endpoints on the client URLs. cmd/cadre and the
// playground use it; it holds no globals, so tests can run several.
package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/keepalive"

	"github.com/cadrekv/cadre/internal/api"
	"github.com/cadrekv/cadre/internal/config"
	"github.com/cadrekv/cadre/internal/netutil"
	"github.com/cadrekv/cadre/internal/server"
	"github.com/cadrekv/cadre/internal/tlsutil"
)

// grpcOverhead leaves room for the envelope around a request of
// --max-request-bytes, so such a request gets etcd's "request is too
// large" rather than a transport error. The JSON gateway allows the same.
const grpcOverhead = api.GRPCOverhead

// Member is a running member with its client listeners.
type Member struct {
	Server *server.Server
	lg     *slog.Logger
	grpc   *grpc.Server
	http   *http.Server
	// clientHTTP serves HTTP/1 on the client URLs: http, or with
	// --listen-client-http-urls a pointer to those.
	clientHTTP *http.Server
	metrics    *http.Server // --listen-metrics-urls: /metrics and health only
	extra      []extraListener
	splits     []*splitListener
	stop       sync.Once
	done       chan struct{}
}

// Start starts a member from a validated configuration. The client ports
// are bound at once (so a busy port fails the start) but serve only after
// the member has published itself through raft.
func Start(cfg *config.Config, lg *slog.Logger, tb *tlsutil.Built) (*Member, error) {
	var lns, httpLns, metricsLns []net.Listener
	closeAll := func() {
		for _, l := range slices.Concat(lns, httpLns, metricsLns) {
			l.Close()
		}
	}
	for _, f := range []struct {
		flag string
		urls []url.URL
		dst  *[]net.Listener
	}{
		{"listen-client-urls", cfg.ListenClientURLs, &lns},
		{"listen-client-http-urls", cfg.ListenClientHTTPURLs, &httpLns},
		// https metrics URLs use the client port's TLS, as in etcd.
		{"listen-metrics-urls", cfg.ListenMetricsURLs, &metricsLns},
	} {
		for _, u := range f.urls {
			ln, err := netutil.Listen(u)
			if err != nil {
				closeAll()
				return nil, fmt.Errorf("cannot listen on --%s %s: %w (is another member or process using that port?)", f.flag, u.String(), err)
			}
			if netutil.IsSecure(u.Scheme) {
				ln = tlsutil.Listener(ln, tb.ClientServer, tb.HandshakeTimeout, lg, "client")
			}
			*f.dst = append(*f.dst, ln)
		}
	}
	srv, err := server.New(cfg, lg, server.PeerTLS{Server: tb.PeerServer, Client: tb.PeerClient, HandshakeTimeout: tb.HandshakeTimeout})
	if err != nil {
		closeAll()
		return nil, err
	}
	m := &Member{Server: srv, lg: srv.Logger(), done: make(chan struct{})}
	m.grpc = grpc.NewServer(
		// TLS ends in the listener; the credentials only expose its state.
		grpc.Creds(tlsutil.AlreadyTLS{}),
		grpc.MaxRecvMsgSize(int(cfg.MaxRequestBytes)+grpcOverhead),
		grpc.MaxSendMsgSize(math.MaxInt32),
		grpc.MaxConcurrentStreams(cfg.MaxConcurrentStreams),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: cfg.GRPCKeepAliveMinTime, PermitWithoutStream: true}),
		grpc.KeepaliveParams(keepalive.ServerParameters{Time: cfg.GRPCKeepAliveInterval, Timeout: cfg.GRPCKeepAliveTimeout}),
		grpc.ChainUnaryInterceptor(api.UnaryInterceptor(srv)),
		grpc.ChainStreamInterceptor(api.StreamInterceptor(srv)),
	)
	api.Register(m.grpc, srv, api.Limits{MaxTxnOps: cfg.MaxTxnOps}, m.lg)
	api.RegisterWatch(m.grpc, srv, cfg.MaxRequestBytes)
	m.http = &http.Server{
		Handler: grpcOrHTTP(m.grpc, api.HTTPHandler(srv, api.HTTPOptions{
			Versions:         api.Versions{Server: server.Version, Cluster: server.ClusterVersion, Cadre: server.CadreVersion},
			Metrics:          srv.Metrics().Handler(),
			EnablePprof:      cfg.EnablePprof,
			DisableDashboard: cfg.DisableDashboard,
			Timeout:          5 * time.Second,
			// The JSON gateway enforces what the gRPC server does.
			Limits:          api.Limits{MaxTxnOps: cfg.MaxTxnOps},
			MaxRequestBytes: cfg.MaxRequestBytes,
			ClientCertAuth:  cfg.TLS.Client.ClientCertAuth,
		})),
		ConnContext:       api.ConnContext,
		ReadHeaderTimeout: 10 * time.Second,
		// gRPC over TLS comes through here (mux.go): no lower stream
		// limit than the gRPC server's own (net/http's default is 250).
		HTTP2: &http.HTTP2Config{MaxConcurrentStreams: math.MaxInt32},
	}
	m.clientHTTP = m.http
	if len(httpLns) > 0 {
		// etcd's rule: with --listen-client-http-urls the client URLs
		// serve gRPC only. A stray HTTP/1 request there is told where to go.
		// gRPC over TLS still arrives through net/http (mux.go).
		m.clientHTTP = &http.Server{Handler: grpcOrHTTP(m.grpc, movedHandler(cfg.ListenClientHTTPURLs)), ConnContext: api.ConnContext,
			ReadHeaderTimeout: 10 * time.Second, HTTP2: &http.HTTP2Config{MaxConcurrentStreams: math.MaxInt32}}
	}
	m.metrics = &http.Server{Handler: onlyPaths(m.http.Handler, "/metrics", "/health", "/livez", "/readyz"), ReadHeaderTimeout: 10 * time.Second}
	for _, ln := range httpLns {
		m.extra = append(m.extra, extraListener{ln, m.http})
	}
	for _, ln := range metricsLns {
		m.extra = append(m.extra, extraListener{ln, m.metrics})
	}
	for _, ln := range lns {
		m.splits = append(m.splits, newSplitListener(ln))
	}
	go m.serve(cfg)
	go func() {
		<-srv.Done()
		m.closeClients(0)
		close(m.done)
	}()
	return m, nil
}

// extraListener is an HTTP-only listener (--listen-client-http-urls,
// --listen-metrics-urls) and the server that serves it.
type extraListener struct {
	ln  net.Listener
	srv *http.Server
}

// onlyPaths serves the given paths of h and 404 for the rest: the metrics
// URLs expose monitoring, not the members gateway or pprof.
func onlyPaths(h http.Handler, paths ...string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !slices.Contains(paths, r.URL.Path) {
			http.NotFound(w, r)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// movedHandler answers HTTP/1 requests on gRPC-only client URLs.
func movedHandler(httpURLs []url.URL) http.Handler {
	where := make([]string, len(httpURLs))
	for i, u := range httpURLs {
		where[i] = u.String()
	}
	msg := "this client URL serves gRPC only; the HTTP endpoints are on --listen-client-http-urls " + strings.Join(where, ",") + "\n"
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, msg, http.StatusNotFound)
	})
}

// serve starts the client listeners at once: until the member has
// published itself, the API answers only Status and serializable reads
// (api.UnaryInterceptor), so an operator can inspect a member that has no
// quorum; everything else waits for "ready to serve client requests".
func (m *Member) serve(cfg *config.Config) {
	for _, sl := range m.splits {
		go func(sl *splitListener) {
			if err := m.grpc.Serve(sl.grpc); err != nil && !errors.Is(err, grpc.ErrServerStopped) {
				m.lg.Debug("gRPC listener stopped", "error", err.Error())
			}
		}(sl)
		go func(sl *splitListener) {
			if err := m.clientHTTP.Serve(sl.http); err != nil && !errors.Is(err, http.ErrServerClosed) {
				m.lg.Debug("HTTP listener stopped", "error", err.Error())
			}
		}(sl)
	}
	for _, e := range m.extra {
		go func(e extraListener) {
			if err := e.srv.Serve(e.ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				m.lg.Debug("HTTP listener stopped", "error", err.Error())
			}
		}(e)
	}
	select {
	case <-m.Server.Ready():
	case <-m.Server.Done():
		return
	}
	// etcd's lines per client URL, which operators and tools look for.
	for _, u := range cfg.ListenClientURLs {
		if netutil.IsSecure(u.Scheme) {
			m.lg.Info("serving client traffic securely", "traffic", "grpc+http", "address", u.Host)
		} else {
			m.lg.Info("serving client traffic insecurely; this is strongly discouraged!", "traffic", "grpc+http", "address", u.Host)
		}
	}
	if len(cfg.ListenClientHTTPURLs) > 0 {
		m.lg.Info("ready to serve client requests", "listen-client-urls", config.URLStrings(cfg.ListenClientURLs),
			"listen-client-http-urls", config.URLStrings(cfg.ListenClientHTTPURLs))
		return
	}
	m.lg.Info("ready to serve client requests", "listen-client-urls", config.URLStrings(cfg.ListenClientURLs))
}

// Done is closed once the member has stopped; Err says why.
func (m *Member) Done() <-chan struct{} { return m.done }

// Err is nil after a clean stop.
func (m *Member) Err() error { return m.Server.Err() }

// Stop stops gracefully: no new client connections, in-flight requests
// get a bounded time to finish, leadership is handed over, then the
// member stops.
func (m *Member) Stop() {
	m.stop.Do(func() {
		m.lg.Info("stopping member: no longer accepting client connections")
		m.closeClients(5 * time.Second)
		m.Server.Stop()
	})
	<-m.done
}

func (m *Member) closeClients(grace time.Duration) {
	for _, sl := range m.splits {
		sl.close()
	}
	for _, e := range m.extra {
		e.ln.Close()
	}
	finished := make(chan struct{})
	go func() {
		m.grpc.GracefulStop()
		close(finished)
	}()
	select {
	case <-finished:
	case <-time.After(grace):
		m.grpc.Stop()
	}
	ctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	if m.clientHTTP != m.http {
		if m.clientHTTP.Shutdown(ctx) != nil {
			_ = m.clientHTTP.Close()
		}
	}
	_ = m.metrics.Shutdown(ctx)
	if m.http.Shutdown(ctx) != nil {
		// Streams (gateway watches) do not end by themselves.
		_ = m.http.Close()
	}
}

// grpcOrHTTP sends gRPC requests that arrive over HTTP/2 through net/http
// (TLS connections, mux.go) to the gRPC server, the rest to the HTTP
// endpoints, by the test etcd applies on its client port.
func grpcOrHTTP(g *grpc.Server, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ProtoMajor == 2 && strings.Contains(r.Header.Get("Content-Type"), "application/grpc") {
			g.ServeHTTP(w, r)
			return
		}
		h.ServeHTTP(w, r)
	})
}
