package auth

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"os"
	"strings"
	"time"

	_ "crypto/sha256" // SHA-256 for RS256/ES256
	_ "crypto/sha512" // SHA-384/512 for RS384/512, ES384/512
)

// JWT tokens (etcd's --auth-token jwt,pub-key=,priv-key=,sign-method=,ttl=):
// self-contained and signed, so any member holding the public key checks
// them without the log; they carry the user, the auth revision they were
// issued at and an expiry.
type JWT struct {
	method string
	hash   crypto.Hash
	priv   crypto.Signer // nil: this member only verifies
	pub    crypto.PublicKey
	ttl    time.Duration
	now    func() time.Time
}

type jwtClaims struct {
	Username string `json:"username"`
	Revision uint64 `json:"revision"`
	Exp      int64  `json:"exp"`
}

// ParseJWTOptions reads etcd's option string (without the leading "jwt,").
func ParseJWTOptions(opts string) (*JWT, error) {
	j := &JWT{method: "RS256", ttl: 5 * time.Minute, now: time.Now}
	var pubFile, privFile string
	for _, kv := range strings.Split(opts, ",") {
		if kv == "" {
			continue
		}
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			return nil, fmt.Errorf("option %q is not key=value", kv)
		}
		switch k {
		case "pub-key":
			pubFile = v
		case "priv-key":
			privFile = v
		case "sign-method":
			j.method = v
		case "ttl":
			d, err := time.ParseDuration(v)
			if err != nil || d <= 0 {
				return nil, fmt.Errorf("ttl %q: use a duration like 5m", v)
			}
			j.ttl = d
		default:
			return nil, fmt.Errorf("unknown option %q: use pub-key, priv-key, sign-method, ttl", k)
		}
	}
	switch j.method {
	case "RS256", "ES256":
		j.hash = crypto.SHA256
	case "RS384", "ES384":
		j.hash = crypto.SHA384
	case "RS512", "ES512":
		j.hash = crypto.SHA512
	default:
		return nil, fmt.Errorf("sign-method %q: use RS256, RS384, RS512, ES256, ES384 or ES512", j.method)
	}
	if pubFile == "" {
		return nil, errors.New("pub-key is required")
	}
	pub, err := readPEM(pubFile)
	if err != nil {
		return nil, fmt.Errorf("pub-key: %w", err)
	}
	if j.pub, err = parsePublicKey(pub); err != nil {
		return nil, fmt.Errorf("pub-key %s: %w", pubFile, err)
	}
	if privFile != "" {
		der, err := readPEM(privFile)
		if err != nil {
			return nil, fmt.Errorf("priv-key: %w", err)
		}
		key, err := x509.ParsePKCS8PrivateKey(der)
		if err != nil {
			if k1, e1 := x509.ParsePKCS1PrivateKey(der); e1 == nil {
				key, err = k1, nil
			} else if k2, e2 := x509.ParseECPrivateKey(der); e2 == nil {
				key, err = k2, nil
			}
		}
		if err != nil {
			return nil, fmt.Errorf("priv-key %s: %w", privFile, err)
		}
		signer, ok := key.(crypto.Signer)
		if !ok {
			return nil, fmt.Errorf("priv-key %s: not a signing key", privFile)
		}
		j.priv = signer
	}
	_, isRSA := j.pub.(*rsa.PublicKey)
	if isRSA != strings.HasPrefix(j.method, "RS") {
		return nil, fmt.Errorf("sign-method %s does not match the key type", j.method)
	}
	return j, nil
}

// parsePublicKey reads a public key as etcd's JWT library does: a PKIX
// public key, or the key of a certificate (etcd's e2e tests pass a server
// certificate as pub-key), or a PKCS#1 RSA public key.
func parsePublicKey(der []byte) (any, error) {
	key, err := x509.ParsePKIXPublicKey(der)
	if err == nil {
		return key, nil
	}
	if cert, cerr := x509.ParseCertificate(der); cerr == nil {
		return cert.PublicKey, nil
	}
	if rk, rerr := x509.ParsePKCS1PublicKey(der); rerr == nil {
		return rk, nil
	}
	return nil, fmt.Errorf("not a public key or certificate (PEM \"PUBLIC KEY\", \"CERTIFICATE\" or \"RSA PUBLIC KEY\"): %w", err)
}

func readPEM(file string) ([]byte, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	blk, _ := pem.Decode(b)
	if blk == nil {
		return nil, fmt.Errorf("%s holds no PEM block", file)
	}
	return blk.Bytes, nil
}

var b64 = base64.RawURLEncoding

// Sign issues a token for user at the auth revision.
func (j *JWT) Sign(user string, revision uint64) (string, error) {
	if j.priv == nil {
		return "", errors.New("auth: this member has no JWT priv-key and cannot issue tokens")
	}
	hdr, _ := json.Marshal(map[string]string{"alg": j.method, "typ": "JWT"})
	claims, _ := json.Marshal(jwtClaims{Username: user, Revision: revision, Exp: j.now().Add(j.ttl).Unix()})
	signing := b64.EncodeToString(hdr) + "." + b64.EncodeToString(claims)
	h := j.hash.New()
	h.Write([]byte(signing))
	var sig []byte
	var err error
	switch k := j.priv.(type) {
	case *rsa.PrivateKey:
		sig, err = rsa.SignPKCS1v15(rand.Reader, k, j.hash, h.Sum(nil))
	case *ecdsa.PrivateKey:
		var r, s *big.Int
		r, s, err = ecdsa.Sign(rand.Reader, k, h.Sum(nil))
		if err == nil {
			size := (k.Curve.Params().BitSize + 7) / 8
			sig = make([]byte, 2*size)
			r.FillBytes(sig[:size])
			s.FillBytes(sig[size:])
		}
	default:
		err = errors.New("auth: unsupported JWT key")
	}
	if err != nil {
		return "", err
	}
	return signing + "." + b64.EncodeToString(sig), nil
}

// Verify checks a token's signature, algorithm and expiry.
func (j *JWT) Verify(token string) (string, uint64, error) {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return "", 0, ErrInvalidAuthToken
	}
	hdrB, err1 := b64.DecodeString(parts[0])
	claimsB, err2 := b64.DecodeString(parts[1])
	sig, err3 := b64.DecodeString(parts[2])
	if err1 != nil || err2 != nil || err3 != nil {
		return "", 0, ErrInvalidAuthToken
	}
	var hdr struct {
		Alg string `json:"alg"`
	}
	if json.Unmarshal(hdrB, &hdr) != nil || hdr.Alg != j.method {
		return "", 0, ErrInvalidAuthToken // never trust the token's own choice of algorithm
	}
	h := j.hash.New()
	h.Write([]byte(parts[0] + "." + parts[1]))
	digest := h.Sum(nil)
	ok := false
	switch k := j.pub.(type) {
	case *rsa.PublicKey:
		ok = rsa.VerifyPKCS1v15(k, j.hash, digest, sig) == nil
	case *ecdsa.PublicKey:
		size := (k.Curve.Params().BitSize + 7) / 8
		if len(sig) == 2*size {
			ok = ecdsa.Verify(k, digest, new(big.Int).SetBytes(sig[:size]), new(big.Int).SetBytes(sig[size:]))
		}
	}
	if !ok {
		return "", 0, ErrInvalidAuthToken
	}
	var c jwtClaims
	if json.Unmarshal(claimsB, &c) != nil || c.Username == "" || j.now().Unix() >= c.Exp {
		return "", 0, ErrInvalidAuthToken
	}
	return c.Username, c.Revision, nil
}
