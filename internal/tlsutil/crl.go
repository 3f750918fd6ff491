package tlsutil

import (
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"os"
	"sync"
	"time"
)

// ErrRevoked means a client presented a certificate the port's CRL lists.
var ErrRevoked = errors.New("certificate revoked")

// revocations is a CRL file (--client-crl-file, --peer-crl-file), re-read
// when it changes so a newly revoked certificate is refused without a
// restart. As in etcd, a certificate is refused when its serial number is
// listed; the CRL's signature is not checked (the operator supplies the
// file, like the CA file).
type revocations struct {
	file string

	mu      sync.Mutex
	serials map[string]bool
	stamp   string
	checked time.Time
}

func newRevocations(file string) (*revocations, error) {
	r := &revocations{file: file}
	serials, stamp, err := readCRL(file)
	if err != nil {
		return nil, err
	}
	r.serials, r.stamp, r.checked = serials, stamp, time.Now()
	return r, nil
}

// readCRL parses a PEM ("X509 CRL") or DER revocation list.
func readCRL(file string) (map[string]bool, string, error) {
	stamp, err := fileStamp(file)
	if err != nil {
		return nil, "", err
	}
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, "", err
	}
	if b, _ := pem.Decode(data); b != nil {
		data = b.Bytes
	}
	list, err := x509.ParseRevocationList(data)
	if err != nil {
		return nil, "", fmt.Errorf("%s is not a certificate revocation list (PEM or DER): %w", file, err)
	}
	serials := make(map[string]bool, len(list.RevokedCertificateEntries))
	for _, e := range list.RevokedCertificateEntries {
		serials[serialKey(e.SerialNumber)] = true
	}
	return serials, stamp, nil
}

func serialKey(n *big.Int) string { return string(n.Bytes()) }

// current returns the listed serials, reloading the file at most every
// reloadEvery. A file that fails to parse (say, half written) keeps the
// previous list, as keyPair does for certificates.
func (r *revocations) current() map[string]bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if time.Since(r.checked) < reloadEvery {
		return r.serials
	}
	r.checked = time.Now()
	if stamp, err := fileStamp(r.file); err == nil && stamp == r.stamp {
		return r.serials
	}
	if serials, stamp, err := readCRL(r.file); err == nil {
		r.serials, r.stamp = serials, stamp
	}
	return r.serials
}

// check refuses a chain holding a listed certificate. flag is the port's
// flag prefix ("" or "peer-") for the message.
func (r *revocations) check(chain []*x509.Certificate, flag string) error {
	if len(chain) == 0 {
		return nil
	}
	serials := r.current()
	for _, c := range chain {
		if serials[serialKey(c.SerialNumber)] {
			kind := "client"
			if flag == "peer-" {
				kind = "peer"
			}
			return fmt.Errorf("%w: serial %x (subject %q) is listed in --%s-crl-file %s", ErrRevoked, c.SerialNumber, c.Subject.String(), kind, r.file)
		}
	}
	return nil
}
