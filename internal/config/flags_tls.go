package config

import (
	"flag"
	"net/url"
	"time"
)

// TLSFiles is one port's TLS flags.
type TLSFiles struct {
	CertFile, KeyFile string
	// ClientCertFile/ClientKeyFile, when set, are the certificate this
	// member presents when it dials that port's kind of URL (peers, for the
	// peer port) instead of CertFile/KeyFile: --peer-client-cert-file.
	ClientCertFile, ClientKeyFile string
	TrustedCAFile                 string
	// CRLFile is a certificate revocation list: a client presenting a
	// certificate whose serial it lists is refused (--client-crl-file,
	// --peer-crl-file).
	CRLFile        string
	ClientCertAuth bool
	AutoTLS        bool
	// A verified client certificate must carry one of AllowedCNs and be
	// valid for one of AllowedHostnames (peer port: --peer-cert-allowed-cn,
	// --peer-cert-allowed-hostname; client port:
	// --client-cert-allowed-hostname).
	AllowedCNs       []string
	AllowedHostnames []string
}

// Enabled reports whether the port has TLS material.
func (f TLSFiles) Enabled() bool { return f.CertFile != "" || f.AutoTLS }

// TLS is the client and peer TLS configuration (etcd's flags).
type TLS struct {
	Client, Peer     TLSFiles
	MinVersion       string // TLS1.2 (default) | TLS1.3
	MaxVersion       string // "" = Go's maximum
	CipherSuites     []string
	HandshakeTimeout time.Duration // Cadre: bound on a TLS handshake, both ports
}

type tlsRaw struct {
	cipherSuites, allowedCNs, allowedHostnames, clientAllowedHostnames string
}

func defineTLSFlags(fs *flag.FlagSet, t *TLS, r *tlsRaw) {
	fs.StringVar(&t.Client.CertFile, "cert-file", t.Client.CertFile, "Path to the client server TLS cert file.")
	fs.StringVar(&t.Client.KeyFile, "key-file", t.Client.KeyFile, "Path to the client server TLS key file.")
	fs.StringVar(&t.Client.TrustedCAFile, "trusted-ca-file", t.Client.TrustedCAFile, "Path to the client server TLS trusted CA file.")
	fs.BoolVar(&t.Client.ClientCertAuth, "client-cert-auth", t.Client.ClientCertAuth, "Require and verify client certificates on the client port.")
	fs.BoolVar(&t.Client.AutoTLS, "auto-tls", t.Client.AutoTLS, "Client TLS using a generated self-signed certificate.")
	fs.StringVar(&t.Client.ClientCertFile, "client-cert-file", t.Client.ClientCertFile, "Client certificate for dialing the client port (etcd's gateway loopback); checked, but Cadre never dials its own client port.")
	fs.StringVar(&t.Client.ClientKeyFile, "client-key-file", t.Client.ClientKeyFile, "Key of --client-cert-file.")
	fs.StringVar(&t.Client.CRLFile, "client-crl-file", t.Client.CRLFile, "Certificate revocation list (PEM or DER): clients presenting a listed certificate are refused.")
	fs.StringVar(&r.clientAllowedHostnames, "client-cert-allowed-hostname", "", "Comma-separated host names; a client certificate must be valid for one of them.")
	fs.StringVar(&t.Peer.CertFile, "peer-cert-file", t.Peer.CertFile, "Path to the peer server TLS cert file (also the client cert when dialing peers).")
	fs.StringVar(&t.Peer.KeyFile, "peer-key-file", t.Peer.KeyFile, "Path to the peer server TLS key file.")
	fs.StringVar(&t.Peer.TrustedCAFile, "peer-trusted-ca-file", t.Peer.TrustedCAFile, "Path to the peer server TLS trusted CA file.")
	fs.BoolVar(&t.Peer.ClientCertAuth, "peer-client-cert-auth", t.Peer.ClientCertAuth, "Require and verify peer client certificates.")
	fs.BoolVar(&t.Peer.AutoTLS, "peer-auto-tls", t.Peer.AutoTLS, "Peer TLS using generated self-signed certificates.")
	fs.StringVar(&t.Peer.ClientCertFile, "peer-client-cert-file", t.Peer.ClientCertFile, "Certificate this member presents when dialing peers (default: --peer-cert-file).")
	fs.StringVar(&t.Peer.ClientKeyFile, "peer-client-key-file", t.Peer.ClientKeyFile, "Key of --peer-client-cert-file.")
	fs.StringVar(&t.Peer.CRLFile, "peer-crl-file", t.Peer.CRLFile, "Certificate revocation list (PEM or DER): peers presenting a listed certificate are refused.")
	fs.StringVar(&r.allowedCNs, "peer-cert-allowed-cn", "", "Allowed CommonName(s) of peer client certificates (comma-separated).")
	fs.StringVar(&r.allowedHostnames, "peer-cert-allowed-hostname", "", "Comma-separated host names; a peer client certificate must be valid for one of them.")
	fs.StringVar(&t.MinVersion, "tls-min-version", t.MinVersion, "Minimum TLS version on both ports: TLS1.2 or TLS1.3.")
	fs.StringVar(&t.MaxVersion, "tls-max-version", t.MaxVersion, "Maximum TLS version on both ports: TLS1.2 or TLS1.3 (default: the highest).")
	fs.StringVar(&r.cipherSuites, "cipher-suites", "", "Comma-separated IANA names of the allowed TLS cipher suites (default: Go's).")
	fs.DurationVar(&t.HandshakeTimeout, "tls-handshake-timeout", t.HandshakeTimeout, "Close a connection that has not finished its TLS handshake within this time.")
}

func (t *TLS) finish(r *tlsRaw) {
	t.CipherSuites = splitList(r.cipherSuites)
	t.Peer.AllowedCNs = splitList(r.allowedCNs)
	t.Peer.AllowedHostnames = splitList(r.allowedHostnames)
	t.Client.AllowedHostnames = splitList(r.clientAllowedHostnames)
}

// validateTLS checks that every https URL has TLS material and that the
// TLS flags make sense together. Files are read later (CheckTLSFiles).
func (c *Config) validateTLS() error {
	t := &c.TLS
	needs := func(flagName string, us []url.URL, f TLSFiles, prefix string) error {
		for _, u := range us {
			if u.Scheme == "https" && !f.Enabled() {
				return invalidf("--%s %s is https but there is no certificate: give --%scert-file and --%skey-file, or --%sauto-tls", flagName, u.String(), prefix, prefix, prefix)
			}
		}
		return nil
	}
	for _, chk := range []func() error{
		func() error { return needs("listen-client-urls", c.ListenClientURLs, t.Client, "") },
		func() error { return needs("listen-peer-urls", c.ListenPeerURLs, t.Peer, "peer-") },
		func() error { return needs("listen-client-http-urls", c.ListenClientHTTPURLs, t.Client, "") },
	} {
		if err := chk(); err != nil {
			return err
		}
	}
	for _, p := range []struct {
		prefix string
		f      TLSFiles
	}{{"", t.Client}, {"peer-", t.Peer}} {
		clientPrefix := map[string]string{"": "client-", "peer-": "peer-client-"}[p.prefix]
		switch {
		case (p.f.CertFile == "") != (p.f.KeyFile == ""):
			return invalidf("--%scert-file and --%skey-file go together: give both (or neither)", p.prefix, p.prefix)
		case (p.f.ClientCertFile == "") != (p.f.ClientKeyFile == ""):
			return invalidf("--%scert-file and --%skey-file go together: give both (or neither)", clientPrefix, clientPrefix)
		case p.f.ClientCertAuth && p.f.TrustedCAFile == "":
			return invalidf("--%sclient-cert-auth needs --%strusted-ca-file: the CA that signs the certificates to accept", p.prefix, p.prefix)
		}
	}
	for _, v := range []struct{ flag, val string }{{"tls-min-version", t.MinVersion}, {"tls-max-version", t.MaxVersion}} {
		if v.val != "" && v.val != "TLS1.2" && v.val != "TLS1.3" {
			return invalidf("invalid --%s %q: use TLS1.2 or TLS1.3", v.flag, v.val)
		}
	}
	if t.MinVersion == "TLS1.3" && t.MaxVersion == "TLS1.2" {
		return invalidf("--tls-min-version TLS1.3 is above --tls-max-version TLS1.2")
	}
	if len(t.CipherSuites) > 0 && t.MinVersion == "TLS1.3" {
		return invalidf("--cipher-suites cannot be used with --tls-min-version TLS1.3 (TLS 1.3 suites are not configurable); drop one of them")
	}
	if t.HandshakeTimeout < 0 {
		return invalidf("invalid --tls-handshake-timeout %s: use a positive duration like 10s", t.HandshakeTimeout)
	}
	if (len(t.Peer.AllowedCNs) > 0 || len(t.Peer.AllowedHostnames) > 0) && !t.Peer.ClientCertAuth {
		return invalidf("--peer-cert-allowed-cn and --peer-cert-allowed-hostname need --peer-client-cert-auth: only a verified client certificate has a name to check")
	}
	if len(t.Client.AllowedHostnames) > 0 && !t.Client.ClientCertAuth {
		return invalidf("--client-cert-allowed-hostname needs --client-cert-auth: only a verified client certificate has a name to check")
	}
	for _, p := range []struct {
		kind, prefix string
		f            TLSFiles
	}{{"client", "", t.Client}, {"peer", "peer-", t.Peer}} {
		if p.f.CRLFile != "" && !p.f.Enabled() {
			return invalidf("--%scrl-file is set but the %s port has no TLS: give --%scert-file and --%skey-file (or --%sauto-tls), or drop --%scrl-file", p.kind+"-", p.kind, p.prefix, p.prefix, p.prefix, p.kind+"-")
		}
	}
	if c.SelfSignedCertValidity == 0 {
		return invalidf("invalid --self-signed-cert-validity=0: give the lifetime in years of auto-TLS certificates, 1 or more")
	}
	return nil
}
