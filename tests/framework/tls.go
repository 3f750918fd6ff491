package framework

import (
	"crypto/tls"
	"testing"
)

// ClusterTLS is the certificate set of a TLS cluster: one CA, one member
// certificate (server and peer, both ports; CN "infra") and one client
// certificate (CN "root") for the harness's clients and etcdctl.
type ClusterTLS struct {
	CA                    *CA
	ServerCert, ServerKey string
	ClientCert, ClientKey string
	client                *tls.Config
}

// NewClusterTLS makes a CA and the certificates a TLS cluster uses.
func NewClusterTLS(t testing.TB) *ClusterTLS {
	t.Helper()
	ca := NewCA(t, "cadre-e2e")
	ct := &ClusterTLS{CA: ca}
	ct.ServerCert, ct.ServerKey = ca.Issue(t, "member", CertOptions{CN: "infra"})
	ct.ClientCert, ct.ClientKey = ca.Issue(t, "client", CertOptions{CN: "root"})
	ct.client = ca.ClientTLS(t, ct.ClientCert, ct.ClientKey)
	return ct
}

// ServerFlags are the member flags for TLS on both ports with client
// certificates required (nil for a plain cluster).
func (ct *ClusterTLS) ServerFlags() []string {
	if ct == nil {
		return nil
	}
	return []string{
		"--cert-file", ct.ServerCert, "--key-file", ct.ServerKey, "--trusted-ca-file", ct.CA.CertFile, "--client-cert-auth",
		"--peer-cert-file", ct.ServerCert, "--peer-key-file", ct.ServerKey, "--peer-trusted-ca-file", ct.CA.CertFile, "--peer-client-cert-auth",
	}
}

// EtcdctlFlags are etcdctl's flags for the client certificate.
func (ct *ClusterTLS) EtcdctlFlags() []string {
	if ct == nil {
		return nil
	}
	return []string{"--cacert", ct.CA.CertFile, "--cert", ct.ClientCert, "--key", ct.ClientKey}
}

func (ct *ClusterTLS) clientConfig() *tls.Config {
	if ct == nil {
		return nil
	}
	return ct.client
}
