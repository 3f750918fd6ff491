package server

import (
	"crypto/tls"
	"fmt"
	"net/http"
	"time"
)

// PeerTLS is the peer port's TLS: Server for the listener, Client for
// everything that dials a peer URL (raft streams, snapshots, forwarded
// requests, join probes, hash checks). Nil configs mean plain text.
type PeerTLS struct {
	Server, Client   *tls.Config
	HandshakeTimeout time.Duration
}

// peerHTTP is the one way the server makes HTTP calls to peers, so https
// peer URLs get the peer certificate and CA everywhere. timeout 0 means
// the caller's context bounds each call.
func (s *Server) peerHTTP(timeout time.Duration) *http.Client {
	s.peerTransportOnce.Do(func() {
		s.peerTransport = &http.Transport{
			Proxy:               nil, // peers are never reached through a proxy
			TLSClientConfig:     s.peerTLS.Client,
			TLSHandshakeTimeout: 5 * time.Second,
			MaxIdleConnsPerHost: 2,
			IdleConnTimeout:     30 * time.Second,
			ForceAttemptHTTP2:   false,
		}
	})
	return &http.Client{Timeout: timeout, Transport: fromHeader{s: s, rt: s.peerTransport}}
}

// fromHeader names this member on every peer HTTP call, as the raft
// streams do (X-Cadre-From): logs and network tools between members can
// then tell who is calling. A member that does not know its ID yet (a
// joiner's first probe) sends none.
type fromHeader struct {
	s  *Server
	rt http.RoundTripper
}

func (f fromHeader) RoundTrip(r *http.Request) (*http.Response, error) {
	if id := f.s.id; id != 0 && r.Header.Get("X-Cadre-From") == "" {
		r = r.Clone(r.Context())
		r.Header.Set("X-Cadre-From", fmt.Sprintf("%016x", id))
	}
	return f.rt.RoundTrip(r)
}
