// Package tlsutil builds the TLS settings of a member's two ports (clients
// and peers) from etcd's flags: certificates re-read when their files
// change (rotation without a restart), client-certificate checks, the
// peer allowed-CN / allowed-hostname rules, self-signed auto TLS, and a
// listener that bounds the handshake.
package tlsutil

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"time"
)

// Files is one port's TLS settings, as the flags give them.
type Files struct {
	CertFile, KeyFile string
	// ClientCertFile/ClientKeyFile replace CertFile/KeyFile as the
	// certificate presented when dialing (--peer-client-cert-file).
	ClientCertFile, ClientKeyFile string
	TrustedCAFile                 string
	CRLFile                       string // revoked client certificates are refused
	ClientCertAuth                bool   // require and verify a client certificate
	AutoTLS                       bool   // self-signed certificate when no CertFile
	// An incoming client's verified certificate must carry one of these
	// common names and be valid for one of these host names.
	AllowedCNs       []string
	AllowedHostnames []string
}

// Enabled reports whether the port has TLS material.
func (f Files) Enabled() bool { return f.CertFile != "" || f.AutoTLS }

// Options are the protocol settings shared by both ports.
type Options struct {
	MinVersion, MaxVersion uint16
	CipherSuites           []uint16 // nil: Go's defaults
}

// reloadEvery bounds how often the certificate files are checked for a
// change; a handshake between checks uses the loaded pair.
const reloadEvery = time.Second

// keyPair is a certificate and key loaded from files and re-read when
// either file changes (size or modification time).
type keyPair struct {
	certFile, keyFile string

	mu      sync.Mutex
	cert    *tls.Certificate
	stamp   string
	checked time.Time
}

func newKeyPair(certFile, keyFile string) (*keyPair, error) {
	k := &keyPair{certFile: certFile, keyFile: keyFile}
	if _, err := k.get(); err != nil {
		return nil, err
	}
	return k, nil
}

func fileStamp(paths ...string) (string, error) {
	var b strings.Builder
	for _, p := range paths {
		st, err := os.Stat(p)
		if err != nil {
			return "", err
		}
		fmt.Fprintf(&b, "%d/%d;", st.Size(), st.ModTime().UnixNano())
	}
	return b.String(), nil
}

// get returns the current pair, reloading it if the files changed. A
// failed reload (say, the key written after the certificate) keeps the
// previous pair until the files are consistent again.
func (k *keyPair) get() (*tls.Certificate, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.cert != nil && time.Since(k.checked) < reloadEvery {
		return k.cert, nil
	}
	k.checked = time.Now()
	stamp, err := fileStamp(k.certFile, k.keyFile)
	if err == nil && stamp == k.stamp && k.cert != nil {
		return k.cert, nil
	}
	c, lerr := tls.LoadX509KeyPair(k.certFile, k.keyFile)
	if lerr != nil {
		if k.cert != nil {
			return k.cert, nil
		}
		return nil, fmt.Errorf("loading certificate %s and key %s: %w", k.certFile, k.keyFile, lerr)
	}
	if c.Leaf == nil && len(c.Certificate) > 0 {
		c.Leaf, _ = x509.ParseCertificate(c.Certificate[0])
	}
	k.cert, k.stamp = &c, stamp
	return k.cert, nil
}

// certPool reads a PEM bundle.
func certPool(file string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("%s holds no PEM certificate", file)
	}
	return pool, nil
}

// Server returns the tls.Config a port serves with. flag names the port's
// flags in errors ("" for the client port, "peer-" for the peer port).
func Server(f Files, o Options, flag string) (*tls.Config, error) {
	if f.CertFile == "" {
		return nil, fmt.Errorf("--%scert-file is empty", flag)
	}
	kp, err := newKeyPair(f.CertFile, f.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("--%scert-file/--%skey-file: %w", flag, flag, err)
	}
	c := &tls.Config{
		MinVersion:   o.MinVersion,
		MaxVersion:   o.MaxVersion,
		CipherSuites: o.CipherSuites,
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
			return kp.get()
		},
		NextProtos: []string{"h2", "http/1.1"},
	}
	if f.TrustedCAFile != "" {
		pool, err := certPool(f.TrustedCAFile)
		if err != nil {
			return nil, fmt.Errorf("--%strusted-ca-file: %w", flag, err)
		}
		c.ClientCAs = pool
		// As etcd: a trusted CA means clients must present a certificate
		// it signed (etcd's transport.TLSInfo.ServerConfig).
		c.ClientAuth = tls.RequireAndVerifyClientCert
	}
	if f.ClientCertAuth {
		c.ClientAuth = tls.RequireAndVerifyClientCert
	}
	var crl *revocations
	if f.CRLFile != "" {
		if crl, err = newRevocations(f.CRLFile); err != nil {
			return nil, fmt.Errorf("--%scrl-file: %w", map[string]string{"": "client-", "peer-": "peer-"}[flag], err)
		}
	}
	if len(f.AllowedCNs) > 0 || len(f.AllowedHostnames) > 0 || crl != nil {
		c.VerifyConnection = func(cs tls.ConnectionState) error {
			if crl != nil {
				if err := crl.check(cs.PeerCertificates, flag); err != nil {
					return err
				}
			}
			if len(f.AllowedCNs) > 0 || len(f.AllowedHostnames) > 0 {
				return checkAllowed(cs, f.AllowedCNs, f.AllowedHostnames, flag)
			}
			return nil
		}
	}
	return c, nil
}

// ErrNotAllowed means a verified peer certificate is not one the
// --peer-cert-allowed-cn / --peer-cert-allowed-hostname rules accept.
// The text is etcd's ("client certificate authentication failed"), which
// operators and etcd's tests search for.
var ErrNotAllowed = errors.New("client certificate authentication failed")

func checkAllowed(cs tls.ConnectionState, cns, hostnames []string, flag string) error {
	if len(cs.PeerCertificates) == 0 {
		return fmt.Errorf("%w: the peer sent no certificate", ErrNotAllowed)
	}
	leaf := cs.PeerCertificates[0]
	if len(cns) > 0 && !slices.Contains(cns, leaf.Subject.CommonName) {
		return fmt.Errorf("%w: CommonName %q is not in --peer-cert-allowed-cn %s", ErrNotAllowed, leaf.Subject.CommonName, strings.Join(cns, ","))
	}
	if len(hostnames) == 0 {
		return nil
	}
	var errs []error
	for _, h := range hostnames {
		err := leaf.VerifyHostname(h)
		if err == nil {
			return nil
		}
		errs = append(errs, err)
	}
	hostFlag := "--client-cert-allowed-hostname"
	if flag == "peer-" {
		hostFlag = "--peer-cert-allowed-hostname"
	}
	return fmt.Errorf("%w: %s %s: %w", ErrNotAllowed, hostFlag, strings.Join(hostnames, ","), errors.Join(errs...))
}

// Client returns the tls.Config a member dials its peers with: its peer
// client certificate (--peer-client-cert-file, else --peer-cert-file) as
// the client certificate (re-read on change) and the peer CA to verify
// them. With auto TLS and no CA the peers' self-signed
// certificates cannot be verified (etcd accepts them the same way).
func Client(f Files, o Options, flag string) (*tls.Config, error) {
	c := &tls.Config{MinVersion: o.MinVersion, MaxVersion: o.MaxVersion, CipherSuites: o.CipherSuites}
	certFile, keyFile, which := f.CertFile, f.KeyFile, "--"+flag+"cert-file/--"+flag+"key-file"
	if f.ClientCertFile != "" {
		certFile, keyFile, which = f.ClientCertFile, f.ClientKeyFile, "--"+flag+"client-cert-file/--"+flag+"client-key-file"
	}
	if certFile != "" {
		kp, err := newKeyPair(certFile, keyFile)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", which, err)
		}
		c.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return kp.get() }
	}
	if f.TrustedCAFile != "" {
		pool, err := certPool(f.TrustedCAFile)
		if err != nil {
			return nil, fmt.Errorf("--%strusted-ca-file: %w", flag, err)
		}
		c.RootCAs = pool
	} else if f.AutoTLS {
		c.InsecureSkipVerify = true //nolint:gosec // auto TLS: self-signed peers, as etcd
	}
	return c, nil
}

// ParseVersion maps etcd's --tls-min-version / --tls-max-version values.
func ParseVersion(s string) (uint16, error) {
	switch s {
	case "":
		return 0, nil
	case "TLS1.2":
		return tls.VersionTLS12, nil
	case "TLS1.3":
		return tls.VersionTLS13, nil
	}
	return 0, fmt.Errorf("unknown TLS version %q: use TLS1.2 or TLS1.3", s)
}

// ParseCipherSuites maps IANA cipher suite names (etcd's --cipher-suites).
func ParseCipherSuites(names []string) ([]uint16, error) {
	if len(names) == 0 {
		return nil, nil
	}
	known := map[string]uint16{}
	var list []string
	for _, cs := range tls.CipherSuites() {
		known[cs.Name] = cs.ID
		list = append(list, cs.Name)
	}
	// The names Go used before its 1.x rename, which etcd still accepts.
	known["TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305"] = tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256
	known["TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305"] = tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256
	out := make([]uint16, 0, len(names))
	for _, n := range names {
		id, ok := known[n]
		if !ok {
			return nil, fmt.Errorf("unknown or insecure cipher suite %q; use names from: %s", n, strings.Join(list, ","))
		}
		out = append(out, id)
	}
	return out, nil
}
