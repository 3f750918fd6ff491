package tlsutil

import (
	"crypto/tls"
	"fmt"
	"net/url"
	"path/filepath"
	"time"

	"github.com/cadrekv/cadre/internal/config"
)

// Built is a member's TLS, ready to use; a nil config means plain text on
// that side.
type Built struct {
	ClientServer     *tls.Config // the client port
	PeerServer       *tls.Config // the peer port
	PeerClient       *tls.Config // dialing peers (https peer URLs)
	HandshakeTimeout time.Duration
}

// Build reads the certificate files (generating auto-TLS ones under
// <data-dir>/fixtures) and returns the member's TLS settings. Errors name
// the flag.
func Build(cfg *config.Config) (*Built, error) {
	t := cfg.TLS
	var o Options
	var err error
	if o.MinVersion, err = ParseVersion(t.MinVersion); err != nil {
		return nil, fmt.Errorf("--tls-min-version: %w", err)
	}
	if o.MaxVersion, err = ParseVersion(t.MaxVersion); err != nil {
		return nil, fmt.Errorf("--tls-max-version: %w", err)
	}
	if o.CipherSuites, err = ParseCipherSuites(t.CipherSuites); err != nil {
		return nil, fmt.Errorf("--cipher-suites: %w", err)
	}
	b := &Built{HandshakeTimeout: t.HandshakeTimeout}
	client, err := files(cfg, t.Client, "client", cfg.AdvertiseClientURLs, cfg.ListenClientURLs)
	if err != nil {
		return nil, err
	}
	if client.Enabled() {
		if b.ClientServer, err = Server(client, o, ""); err != nil {
			return nil, err
		}
	}
	if client.ClientCertFile != "" {
		// Only etcd's gateway loopback dials the client port with this
		// pair; Cadre has none, but a broken pair is still refused here
		// rather than when some later version starts using it.
		if _, err := newKeyPair(client.ClientCertFile, client.ClientKeyFile); err != nil {
			return nil, fmt.Errorf("--client-cert-file/--client-key-file: %w", err)
		}
	}
	peer, err := files(cfg, t.Peer, "peer", cfg.InitialAdvertisePeerURLs, cfg.ListenPeerURLs)
	if err != nil {
		return nil, err
	}
	if peer.Enabled() {
		if b.PeerServer, err = Server(peer, o, "peer-"); err != nil {
			return nil, err
		}
	}
	if b.PeerClient, err = Client(peer, o, "peer-"); err != nil {
		return nil, err
	}
	return b, nil
}

// files maps the flags to Files, making the self-signed pair for auto TLS
// when no certificate is given.
func files(cfg *config.Config, f config.TLSFiles, kind string, advertise, listen []url.URL) (Files, error) {
	out := Files{CertFile: f.CertFile, KeyFile: f.KeyFile, ClientCertFile: f.ClientCertFile, ClientKeyFile: f.ClientKeyFile,
		TrustedCAFile: f.TrustedCAFile, CRLFile: f.CRLFile, ClientCertAuth: f.ClientCertAuth,
		AutoTLS: f.AutoTLS, AllowedCNs: f.AllowedCNs, AllowedHostnames: f.AllowedHostnames}
	if f.AutoTLS && f.CertFile == "" {
		var hosts []string
		for _, u := range append(append([]url.URL(nil), advertise...), listen...) {
			hosts = append(hosts, u.Hostname())
		}
		cert, key, err := SelfSigned(filepath.Join(cfg.DataDir, "fixtures", kind), hosts, int(cfg.SelfSignedCertValidity))
		if err != nil {
			prefix := map[string]string{"client": "", "peer": "peer-"}[kind]
			return Files{}, fmt.Errorf("--%sauto-tls: making a self-signed certificate: %w", prefix, err)
		}
		out.CertFile, out.KeyFile = cert, key
	}
	return out, nil
}
