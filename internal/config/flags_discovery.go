package config

import (
	"flag"
	"net"
	"strings"
)

// defineDiscoveryFlags defines etcd's bootstrap discovery flags (v3
// discovery and DNS SRV) plus Cadre's --discovery-srv-resolver.
func defineDiscoveryFlags(fs *flag.FlagSet, d *Discovery, r *rawFlags) {
	fs.StringVar(&d.Token, "discovery-token", d.Token, "V3 discovery: the token of this cluster's registration on the discovery service.")
	r.discoveryEndpoints = strings.Join(d.Endpoints, ",")
	fs.StringVar(&r.discoveryEndpoints, "discovery-endpoints", r.discoveryEndpoints, "V3 discovery: client URLs of the etcd-API cluster used as the discovery service.")
	fs.DurationVar(&d.DialTimeout, "discovery-dial-timeout", d.DialTimeout, "V3 discovery: dial timeout for the discovery service.")
	fs.DurationVar(&d.RequestTimeout, "discovery-request-timeout", d.RequestTimeout, "V3 discovery: timeout of each request to the discovery service.")
	fs.DurationVar(&d.KeepAliveTime, "discovery-keepalive-time", d.KeepAliveTime, "V3 discovery: keep-alive ping interval to the discovery service.")
	fs.DurationVar(&d.KeepAliveTimeout, "discovery-keepalive-timeout", d.KeepAliveTimeout, "V3 discovery: keep-alive ping timeout.")
	fs.BoolVar(&d.InsecureTransport, "discovery-insecure-transport", d.InsecureTransport, "V3 discovery: talk to the discovery service without TLS.")
	fs.BoolVar(&d.InsecureSkipTLSVerify, "discovery-insecure-skip-tls-verify", d.InsecureSkipTLSVerify, "V3 discovery: skip verifying the discovery service's certificate.")
	fs.StringVar(&d.CertFile, "discovery-cert", d.CertFile, "V3 discovery: client certificate file for the discovery service.")
	fs.StringVar(&d.KeyFile, "discovery-key", d.KeyFile, "V3 discovery: client key file for the discovery service.")
	fs.StringVar(&d.CACertFile, "discovery-cacert", d.CACertFile, "V3 discovery: CA bundle to verify the discovery service.")
	fs.StringVar(&d.User, "discovery-user", d.User, "V3 discovery: user name for the discovery service (user or user:password).")
	fs.StringVar(&d.Password, "discovery-password", d.Password, "V3 discovery: password for the discovery service.")
	fs.StringVar(&d.SRV, "discovery-srv", d.SRV, "DNS domain whose _etcd-server-ssl._tcp / _etcd-server._tcp SRV records list the initial members.")
	fs.StringVar(&d.SRVName, "discovery-srv-name", d.SRVName, "Suffix to the DNS SRV service name (_etcd-server-<suffix>._tcp).")
	fs.StringVar(&d.SRVResolver, "discovery-srv-resolver", d.SRVResolver, "DNS server host:port for --discovery-srv lookups (default: the system resolver).")
}

// validateDiscovery allows one bootstrap method, and discovery only for a
// new cluster.
func (c *Config) validateDiscovery() error {
	d := &c.Discovery
	method := "--discovery-srv"
	if d.Token != "" {
		method = "--discovery-token"
	}
	switch {
	case d.Token != "" && d.SRV != "":
		return invalidf("--discovery-token and --discovery-srv are both set; use one bootstrap method")
	case d.Token != "" && len(d.Endpoints) == 0:
		return invalidf("--discovery-token %q is set but --discovery-endpoints is empty; list the discovery cluster's client URLs, like --discovery-endpoints=http://10.0.0.9:2379", d.Token)
	case d.Token == "" && len(d.Endpoints) > 0:
		return invalidf("--discovery-endpoints is set but --discovery-token is empty; give the token this cluster registers under, like --discovery-token=my-cluster-1")
	case d.SRVName != "" && d.SRV == "":
		return invalidf("--discovery-srv-name %q is set but --discovery-srv is empty; give the DNS domain, like --discovery-srv=example.com", d.SRVName)
	case d.SRVResolver != "" && d.SRV == "":
		return invalidf("--discovery-srv-resolver %q is set but --discovery-srv is empty; give the DNS domain, like --discovery-srv=example.com", d.SRVResolver)
	case !d.Enabled():
		return nil
	case c.InitialClusterState == "existing":
		return invalidf("%s is set with --initial-cluster-state=existing: discovery only bootstraps a new cluster; to join a running cluster, run `member add` and start this member with the --initial-cluster it prints (and no discovery flags)", method)
	case c.InitialClusterSet:
		return invalidf("--initial-cluster and %s are both set; use one bootstrap method: drop --initial-cluster (discovery builds it) or drop the discovery flags", method)
	case d.Token != "" && (d.DialTimeout <= 0 || d.RequestTimeout <= 0):
		return invalidf("--discovery-dial-timeout and --discovery-request-timeout must be positive, like 2s and 5s")
	}
	if d.SRVResolver != "" {
		if _, _, err := net.SplitHostPort(d.SRVResolver); err != nil {
			return invalidf("invalid --discovery-srv-resolver %q: use host:port of a DNS server, like 10.0.0.53:53", d.SRVResolver)
		}
	}
	for _, ep := range d.Endpoints {
		if !strings.Contains(ep, "://") && strings.Count(ep, ":") != 1 {
			return invalidf("invalid --discovery-endpoints entry %q: use host:port or a URL, like http://10.0.0.9:2379", ep)
		}
	}
	return nil
}
