package tlsutil

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestParseVersionAndSuites(t *testing.T) {
	if v, err := ParseVersion("TLS1.3"); err != nil || v != tls.VersionTLS13 {
		t.Fatalf("TLS1.3: %v %v", v, err)
	}
	if _, err := ParseVersion("TLS1.1"); err == nil || !strings.Contains(err.Error(), "use TLS1.2 or TLS1.3") {
		t.Fatalf("TLS1.1 accepted or unclear: %v", err)
	}
	ids, err := ParseCipherSuites([]string{"TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256"})
	if err != nil || len(ids) != 1 || ids[0] != tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256 {
		t.Fatalf("suites: %v %v", ids, err)
	}
	// etcd's older names for the ChaCha20 suites are accepted.
	if ids, err := ParseCipherSuites([]string{"TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305"}); err != nil || ids[0] != tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256 {
		t.Fatalf("old ChaCha20 name: %v %v", ids, err)
	}
	if _, err := ParseCipherSuites([]string{"TLS_RSA_WITH_RC4_128_SHA"}); err == nil {
		t.Fatal("an insecure suite was accepted")
	}
}

// TestCheckAllowed: the peer CN and host name rules.
func TestCheckAllowed(t *testing.T) {
	dir := t.TempDir()
	certFile, _, err := SelfSigned(dir, []string{"infra1.cadre.test", "127.0.0.1"}, 1)
	if err != nil {
		t.Fatal(err)
	}
	pair, err := tls.LoadX509KeyPair(certFile, filepath.Join(dir, "key.pem"))
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ := x509.ParseCertificate(pair.Certificate[0])
	cs := tls.ConnectionState{PeerCertificates: []*x509.Certificate{leaf}}
	if err := checkAllowed(cs, nil, []string{"other.cadre.test", "infra1.cadre.test"}, "peer-"); err != nil {
		t.Fatalf("allowed host name refused: %v", err)
	}
	if err := checkAllowed(cs, nil, []string{"infra2.cadre.test"}, "peer-"); !errors.Is(err, ErrNotAllowed) {
		t.Fatalf("another host name: %v, want ErrNotAllowed", err)
	}
	if err := checkAllowed(cs, []string{"infra"}, nil, "peer-"); !errors.Is(err, ErrNotAllowed) || !strings.Contains(err.Error(), "CommonName") {
		t.Fatalf("CN outside the list: %v", err)
	}
	if err := checkAllowed(tls.ConnectionState{}, []string{"infra"}, nil, "peer-"); !errors.Is(err, ErrNotAllowed) {
		t.Fatalf("no certificate: %v", err)
	}
}

// TestKeyPairReload: a changed pair is picked up; a half-written one keeps
// the previous pair instead of failing handshakes.
func TestKeyPairReload(t *testing.T) {
	a, b := t.TempDir(), t.TempDir()
	certA, keyA, _ := SelfSigned(a, []string{"127.0.0.1"}, 1)
	certB, keyB, _ := SelfSigned(b, []string{"127.0.0.1"}, 1)
	dir := t.TempDir()
	cert, key := filepath.Join(dir, "c.pem"), filepath.Join(dir, "k.pem")
	copyFile(t, certA, cert)
	copyFile(t, keyA, key)
	kp, err := newKeyPair(cert, key)
	if err != nil {
		t.Fatal(err)
	}
	first, _ := kp.get()
	copyFile(t, certB, cert) // certificate replaced, key not yet: mismatch
	kp.checked = time.Time{}
	if c, err := kp.get(); err != nil || c != first {
		t.Fatalf("a half-written pair: %v %v, want the previous pair", c, err)
	}
	copyFile(t, keyB, key)
	kp.checked = time.Time{}
	second, err := kp.get()
	if err != nil || second == first {
		t.Fatalf("the new pair was not loaded: %v", err)
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o600); err != nil {
		t.Fatal(err)
	}
}
