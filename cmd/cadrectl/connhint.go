package main

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// connectionHint explains a request that timed out before any endpoint
// answered, which client/v3 reports only as "context deadline exceeded": it
// probes the first endpoints directly and names what is wrong (nothing
// listening, TLS expected or refused, the server's certificate not
// trusted, a client certificate missing or not accepted). "" when the
// probes find nothing wrong.
func connectionHint(spec *clientv3.ConfigSpec) string {
	if spec == nil {
		return ""
	}
	cfg, err := clientConfig(spec)
	if err != nil {
		return ""
	}
	for i, ep := range spec.Endpoints {
		if i == 3 {
			break
		}
		if h := probeEndpoint(ep, cfg.TLS); h != "" {
			return h
		}
	}
	return ""
}

const probeTimeout = time.Second

func probeEndpoint(ep string, tlsCfg *tls.Config) string {
	scheme, addr, ok := strings.Cut(ep, "://")
	if !ok {
		scheme, addr = "", ep
	}
	d := net.Dialer{Timeout: probeTimeout}
	conn, err := d.Dial("tcp", addr)
	if err != nil {
		return fmt.Sprintf("cannot connect to %s (%v): is a member running there, and is the address in --endpoints right?", addr, err)
	}
	defer conn.Close()
	if tlsCfg == nil && scheme != "https" {
		// Plain text: does the server want TLS instead?
		tc := tls.Client(conn, &tls.Config{InsecureSkipVerify: true}) //nolint:gosec // probing only
		_ = tc.SetDeadline(time.Now().Add(probeTimeout))
		if tc.Handshake() == nil {
			return fmt.Sprintf("%s serves TLS: use an https:// endpoint with --cacert <CA file> (and --cert/--key if it requires client certificates)", addr)
		}
		return ""
	}
	c := &tls.Config{}
	if tlsCfg != nil {
		c = tlsCfg.Clone()
	}
	if host, _, err := net.SplitHostPort(addr); err == nil && c.ServerName == "" {
		c.ServerName = host
	}
	tc := tls.Client(conn, c)
	_ = tc.SetDeadline(time.Now().Add(probeTimeout))
	err = tc.Handshake()
	if err == nil {
		// TLS 1.3 reports a refused client certificate on the first read.
		_, err = tc.Read(make([]byte, 1))
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return ""
		}
	}
	if err == nil {
		return ""
	}
	msg := err.Error()
	switch {
	case strings.Contains(msg, "first record does not look like a TLS handshake"):
		return fmt.Sprintf("%s does not serve TLS: use an http:// endpoint (or drop --cacert/--cert/--key)", addr)
	case strings.Contains(msg, "unknown authority") || strings.Contains(msg, "not valid for") || strings.Contains(msg, "certificate is not"):
		return fmt.Sprintf("the server certificate of %s is not trusted (%v): pass the CA that signed it with --cacert, or --insecure-skip-tls-verify for testing only", addr, err)
	case strings.Contains(msg, "certificate required") || strings.Contains(msg, "bad certificate") ||
		strings.Contains(msg, "unknown certificate") || strings.Contains(msg, "expired"):
		return fmt.Sprintf("%s refused this client's certificate (%v): pass --cert and --key signed by a CA the server trusts (its --trusted-ca-file), and check it has not expired", addr, err)
	}
	return fmt.Sprintf("TLS with %s failed: %v", addr, err)
}

// authHint explains the auth errors etcd reports tersely.
func authHint(err error, user string) string {
	msg := err.Error()
	switch {
	case strings.Contains(msg, "user name is empty"):
		return "authentication is enabled on this cluster: pass --user <name>[:<password>], or a client certificate (--cert/--key) whose CommonName is a user"
	case strings.Contains(msg, "permission denied") && user != "":
		name, _, _ := strings.Cut(user, ":")
		return fmt.Sprintf("user %q lacks the permission: `cadrectl user get %s --detail` lists what its roles allow; key ranges are checked whole (prefix and from-key included)", name, name)
	}
	return ""
}
