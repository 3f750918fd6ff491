package tlsutil

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"io"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// testCA issues certificates and revocation lists for the tests.
type testCA struct {
	t    *testing.T
	dir  string
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	file string
	next int64
}

func newTestCA(t *testing.T) *testCA {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	ca := &testCA{t: t, dir: t.TempDir(), cert: cert, key: key, next: 100}
	ca.file = ca.write("ca.pem", "CERTIFICATE", der)
	return ca
}

func (ca *testCA) write(name, typ string, der []byte) string {
	p := filepath.Join(ca.dir, name)
	if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		ca.t.Fatal(err)
	}
	return p
}

// issue makes a certificate for 127.0.0.1 usable by servers and clients.
func (ca *testCA) issue(name string) (certFile, keyFile string, serial *big.Int) {
	ca.next++
	serial = big.NewInt(ca.next)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{
		SerialNumber: serial, Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		ca.t.Fatal(err)
	}
	kder, _ := x509.MarshalECPrivateKey(key)
	return ca.write(name+".crt", "CERTIFICATE", der), ca.write(name+".key", "EC PRIVATE KEY", kder), serial
}

// crl writes a revocation list of serials to name, PEM or DER.
func (ca *testCA) crl(name string, pemForm bool, serials ...*big.Int) string {
	var entries []x509.RevocationListEntry
	for _, s := range serials {
		entries = append(entries, x509.RevocationListEntry{SerialNumber: s, RevocationTime: time.Now()})
	}
	der, err := x509.CreateRevocationList(rand.Reader, &x509.RevocationList{
		Number: big.NewInt(ca.next), ThisUpdate: time.Now(), NextUpdate: time.Now().Add(time.Hour),
		RevokedCertificateEntries: entries,
	}, ca.cert, ca.key)
	if err != nil {
		ca.t.Fatal(err)
	}
	if pemForm {
		return ca.write(name, "X509 CRL", der)
	}
	p := filepath.Join(ca.dir, name)
	if err := os.WriteFile(p, der, 0o600); err != nil {
		ca.t.Fatal(err)
	}
	return p
}

// handshake runs a TLS handshake between server and client configs over
// a pipe and returns the server's error.
func handshake(server, client *tls.Config) error {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	errc := make(chan error, 1)
	go func() {
		c := tls.Client(b, client)
		err := c.Handshake()
		_, _ = io.Copy(io.Discard, c) // drain session tickets: a pipe has no buffer
		errc <- err
	}()
	s := tls.Server(a, server)
	_ = s.SetDeadline(time.Now().Add(5 * time.Second))
	err := s.Handshake()
	a.Close()
	<-errc
	return err
}

// TestCRLRefusesRevoked: with --client-crl-file (or --peer-crl-file), a
// client whose certificate the list names is refused; others get in.
func TestCRLRefusesRevoked(t *testing.T) {
	ca := newTestCA(t)
	srvCert, srvKey, _ := ca.issue("server")
	goodCert, goodKey, _ := ca.issue("good")
	badCert, badKey, badSerial := ca.issue("bad")
	for _, pemForm := range []bool{true, false} {
		crl := ca.crl("revoked.crl", pemForm, badSerial)
		srv, err := Server(Files{CertFile: srvCert, KeyFile: srvKey, TrustedCAFile: ca.file, ClientCertAuth: true, CRLFile: crl}, Options{}, "")
		if err != nil {
			t.Fatal(err)
		}
		client := func(cert, key string) *tls.Config {
			c, err := Client(Files{CertFile: cert, KeyFile: key, TrustedCAFile: ca.file}, Options{}, "")
			if err != nil {
				t.Fatal(err)
			}
			c.ServerName = "127.0.0.1"
			return c
		}
		if err := handshake(srv, client(goodCert, goodKey)); err != nil {
			t.Errorf("pem=%v: a certificate not in the CRL was refused: %v", pemForm, err)
		}
		err = handshake(srv, client(badCert, badKey))
		if !errors.Is(err, ErrRevoked) || !strings.Contains(err.Error(), "--client-crl-file") {
			t.Errorf("pem=%v: a revoked certificate: %v, want ErrRevoked naming --client-crl-file", pemForm, err)
		}
	}
}

// TestCRLReload: a CRL rewritten while the member runs takes effect; one
// that fails to parse keeps the previous list.
func TestCRLReload(t *testing.T) {
	ca := newTestCA(t)
	_, _, s1 := ca.issue("one")
	_, _, s2 := ca.issue("two")
	file := ca.crl("list.crl", true, s1)
	r, err := newRevocations(file)
	if err != nil {
		t.Fatal(err)
	}
	leaf := func(s *big.Int) []*x509.Certificate { return []*x509.Certificate{{SerialNumber: s}} }
	if r.check(leaf(s1), "peer-") == nil || r.check(leaf(s2), "peer-") != nil {
		t.Fatal("initial list not applied")
	}
	ca.crl("list.crl", true, s2)
	r.checked = time.Time{}
	if r.check(leaf(s1), "peer-") != nil || r.check(leaf(s2), "peer-") == nil {
		t.Fatal("rewritten list not applied")
	}
	if err := os.WriteFile(file, []byte("garbage that is longer than before"), 0o600); err != nil {
		t.Fatal(err)
	}
	r.checked = time.Time{}
	if err := r.check(leaf(s2), "peer-"); err == nil || !strings.Contains(err.Error(), "--peer-crl-file") {
		t.Fatalf("a broken file dropped the previous list: %v", err)
	}
	if _, err := newRevocations(file); err == nil || !strings.Contains(err.Error(), "not a certificate revocation list") {
		t.Fatalf("a broken file at start: %v", err)
	}
}

// TestPeerClientCert: --peer-client-cert-file is the certificate a member
// presents when dialing peers; without it, --peer-cert-file.
func TestPeerClientCert(t *testing.T) {
	ca := newTestCA(t)
	srvCert, srvKey, _ := ca.issue("peer-server")
	cliCert, cliKey, _ := ca.issue("peer-client")
	for _, tc := range []struct {
		f    Files
		want string
	}{
		{Files{CertFile: srvCert, KeyFile: srvKey, ClientCertFile: cliCert, ClientKeyFile: cliKey, TrustedCAFile: ca.file}, "peer-client"},
		{Files{CertFile: srvCert, KeyFile: srvKey, TrustedCAFile: ca.file}, "peer-server"},
	} {
		c, err := Client(tc.f, Options{}, "peer-")
		if err != nil {
			t.Fatal(err)
		}
		got, err := c.GetClientCertificate(&tls.CertificateRequestInfo{})
		if err != nil {
			t.Fatal(err)
		}
		leaf, _ := x509.ParseCertificate(got.Certificate[0])
		if leaf.Subject.CommonName != tc.want {
			t.Errorf("dialing with %q, want %q", leaf.Subject.CommonName, tc.want)
		}
	}
	_, err := Client(Files{CertFile: srvCert, KeyFile: srvKey, ClientCertFile: cliCert, ClientKeyFile: srvKey}, Options{}, "peer-")
	if err == nil || !strings.Contains(err.Error(), "--peer-client-cert-file") {
		t.Errorf("mismatched client pair: %v, want an error naming --peer-client-cert-file", err)
	}
}
