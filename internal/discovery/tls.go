package discovery

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"

	"go.uber.org/zap"

	"github.com/cadrekv/cadre/internal/config"
)

// clientTLS builds the TLS settings for the discovery service from the
// --discovery-* flags; nil means plain text (--discovery-insecure-transport
// with no certificates).
func clientTLS(d *config.Discovery) (*tls.Config, error) {
	if d.InsecureTransport && d.CertFile == "" && d.CACertFile == "" && !d.InsecureSkipTLSVerify {
		return nil, nil
	}
	c := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: d.InsecureSkipTLSVerify} //nolint:gosec // the operator asked for it
	if d.CACertFile != "" {
		pem, err := os.ReadFile(d.CACertFile)
		if err != nil {
			return nil, fmt.Errorf("--discovery-cacert: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("--discovery-cacert %s holds no PEM certificate", d.CACertFile)
		}
		c.RootCAs = pool
	}
	if d.CertFile != "" || d.KeyFile != "" {
		cert, err := tls.LoadX509KeyPair(d.CertFile, d.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("--discovery-cert/--discovery-key: %w", err)
		}
		c.Certificates = []tls.Certificate{cert}
	}
	return c, nil
}

// quietZap keeps client/v3's own retry logs out of the member's log; the
// errors that matter are returned and logged by the caller.
func quietZap() *zap.Logger { return zap.NewNop() }
