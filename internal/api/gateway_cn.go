package api

import (
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"strings"
)

// With --client-cert-auth and auth on, etcd refuses a gateway call made
// with a certificate that has a CommonName: over gRPC the CommonName
// would sign the caller in, through the gateway it is ignored, and etcd
// would rather fail than run the call as someone else (anonymous).

type connTLSKey struct{}

// ConnContext is the client HTTP server's ConnContext: it keeps each
// connection's TLS state for the handlers (the listener hands over
// wrapped connections, for which net/http leaves Request.TLS nil).
func ConnContext(ctx context.Context, c net.Conn) context.Context {
	if s, ok := c.(interface{ ConnectionState() tls.ConnectionState }); ok {
		st := s.ConnectionState()
		return context.WithValue(ctx, connTLSKey{}, &st)
	}
	return ctx
}

func requestTLS(r *http.Request) *tls.ConnectionState {
	if r.TLS != nil {
		return r.TLS
	}
	st, _ := r.Context().Value(connTLSKey{}).(*tls.ConnectionState)
	return st
}

// refuseGatewayCN answers etcd's 400 (plain text, as etcd's http.Error)
// before anything else, CORS headers included.
func refuseGatewayCN(m Member, clientCertAuth bool, next http.Handler) http.Handler {
	if !clientCertAuth {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gw := strings.HasPrefix(r.URL.Path, "/v3/") || strings.HasPrefix(r.URL.Path, "/v3beta/")
		if st := requestTLS(r); gw && st != nil && m.AuthStore().Enabled() {
			for _, chain := range st.VerifiedChains {
				if len(chain) > 0 && chain[0].Subject.CommonName != "" {
					http.Error(w, "CommonName of client sending a request against gateway will be ignored and not used as expected", http.StatusBadRequest)
					return
				}
			}
		}
		next.ServeHTTP(w, r)
	})
}
