package auth

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func writeKeys(t *testing.T, priv any, pub any) (string, string) {
	t.Helper()
	dir := t.TempDir()
	pd, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	ud, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	privF, pubF := filepath.Join(dir, "priv.pem"), filepath.Join(dir, "pub.pem")
	_ = os.WriteFile(privF, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pd}), 0o600)
	_ = os.WriteFile(pubF, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: ud}), 0o600)
	return privF, pubF
}

// TestJWT: tokens verify with the public key alone, and a tampered,
// re-signed-with-another-algorithm or expired token is refused.
func TestJWT(t *testing.T) {
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	rk, _ := rsa.GenerateKey(rand.Reader, 2048)
	for _, tc := range []struct {
		method    string
		priv, pub any
	}{{"ES256", ec, &ec.PublicKey}, {"RS256", rk, &rk.PublicKey}} {
		privF, pubF := writeKeys(t, tc.priv, tc.pub)
		signer, err := ParseJWTOptions("pub-key=" + pubF + ",priv-key=" + privF + ",sign-method=" + tc.method + ",ttl=1m")
		if err != nil {
			t.Fatal(err)
		}
		verifier, err := ParseJWTOptions("pub-key=" + pubF + ",sign-method=" + tc.method)
		if err != nil {
			t.Fatal(err)
		}
		tok, err := signer.Sign("alice", 7)
		if err != nil {
			t.Fatal(err)
		}
		if u, rev, err := verifier.Verify(tok); err != nil || u != "alice" || rev != 7 {
			t.Fatalf("%s verify: %q %d %v", tc.method, u, rev, err)
		}
		parts := strings.Split(tok, ".")
		forged := parts[0] + "." + b64.EncodeToString([]byte(`{"username":"root","revision":7,"exp":9999999999}`)) + "." + parts[2]
		if _, _, err := verifier.Verify(forged); err != ErrInvalidAuthToken {
			t.Fatalf("%s: a token with changed claims verified: %v", tc.method, err)
		}
		none := b64.EncodeToString([]byte(`{"alg":"none"}`)) + "." + parts[1] + "."
		if _, _, err := verifier.Verify(none); err != ErrInvalidAuthToken {
			t.Fatalf("%s: an unsigned token verified: %v", tc.method, err)
		}
		verifier.now = func() time.Time { return time.Now().Add(2 * time.Minute) }
		if _, _, err := verifier.Verify(tok); err != ErrInvalidAuthToken {
			t.Fatalf("%s: an expired token verified: %v", tc.method, err)
		}
	}
	if _, err := ParseJWTOptions("pub-key=/nope,sign-method=HS256"); err == nil || !strings.Contains(err.Error(), "sign-method") {
		t.Fatalf("HS256: %v", err)
	}
}

// TestJWTPublicKeyFromCertificate: pub-key may name a certificate (etcd's
// own tests pass the server certificate) or a PKCS#1 RSA public key; a
// file with neither is refused naming what was expected.
func TestJWTPublicKeyFromCertificate(t *testing.T) {
	rk, _ := rsa.GenerateKey(rand.Reader, 2048)
	privF, _ := writeKeys(t, rk, &rk.PublicKey)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &rk.PublicKey, rk)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	files := map[string][]byte{
		"cert.pem":  pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		"pkcs1.pem": pem.EncodeToMemory(&pem.Block{Type: "RSA PUBLIC KEY", Bytes: x509.MarshalPKCS1PublicKey(&rk.PublicKey)}),
		"junk.pem":  pem.EncodeToMemory(&pem.Block{Type: "JUNK", Bytes: []byte("not a key")}),
	}
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	signer, err := ParseJWTOptions("pub-key=" + filepath.Join(dir, "cert.pem") + ",priv-key=" + privF + ",sign-method=RS256")
	if err != nil {
		t.Fatalf("a certificate as pub-key: %v", err)
	}
	tok, err := signer.Sign("alice", 1)
	if err != nil {
		t.Fatal(err)
	}
	verifier, err := ParseJWTOptions("pub-key=" + filepath.Join(dir, "pkcs1.pem") + ",sign-method=RS256")
	if err != nil {
		t.Fatalf("a PKCS#1 public key as pub-key: %v", err)
	}
	if u, _, err := verifier.Verify(tok); err != nil || u != "alice" {
		t.Fatalf("verify with the PKCS#1 key: %q %v", u, err)
	}
	if _, err := ParseJWTOptions("pub-key=" + filepath.Join(dir, "junk.pem") + ",sign-method=RS256"); err == nil || !strings.Contains(err.Error(), "CERTIFICATE") {
		t.Fatalf("junk as pub-key: %v", err)
	}
}
