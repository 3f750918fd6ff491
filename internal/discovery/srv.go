package discovery

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/cadrekv/cadre/internal/config"
)

// SRV builds the initial cluster from DNS SRV records, as etcd does:
// _etcd-server-ssl._tcp.<domain> gives https peers, _etcd-server._tcp.<domain>
// http peers (with --discovery-srv-name, _etcd-server-ssl-<name> and
// _etcd-server-<name>). The record that resolves to one of this member's
// advertised peer URLs is this member (--name); the others get placeholder
// names until they publish their own. Every member derives member IDs from
// the URL text, so all of them use the records' host names; when this
// member advertises the same address under another spelling, it adopts the
// record's (returned as selfURLs) so its ID agrees with the others'.
func SRV(ctx context.Context, cfg *config.Config, lg *slog.Logger) (cluster string, selfURLs []string, err error) {
	d := &cfg.Discovery
	r := resolver(d.SRVResolver)
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()

	// This member's advertised peer addresses, resolved.
	mine := map[string]url.URL{}
	for _, u := range cfg.InitialAdvertisePeerURLs {
		addrs, err := resolveHostPort(ctx, r, u.Host)
		if err != nil {
			return "", nil, fmt.Errorf("--discovery-srv: resolving this member's --initial-advertise-peer-urls %s: %w", u.String(), err)
		}
		for _, a := range addrs {
			mine[a] = u
		}
	}

	var parts []string
	found := false
	other := 0
	var names []string
	for _, svc := range []struct{ service, scheme string }{{"etcd-server-ssl", "https"}, {"etcd-server", "http"}} {
		service := svc.service
		if d.SRVName != "" {
			service += "-" + d.SRVName
		}
		names = append(names, "_"+service+"._tcp."+d.SRV)
		_, recs, err := r.LookupSRV(ctx, service, "tcp", d.SRV)
		if err != nil {
			continue // etcd too: a missing record set is not an error while the other exists
		}
		for _, rec := range recs {
			host := strings.TrimSuffix(rec.Target, ".")
			hostPort := net.JoinHostPort(host, strconv.Itoa(int(rec.Port)))
			u := svc.scheme + "://" + hostPort
			addrs, err := resolveHostPort(ctx, r, hostPort)
			if err != nil {
				return "", nil, fmt.Errorf("--discovery-srv: resolving SRV target %s of _%s._tcp.%s: %w", hostPort, service, d.SRV, err)
			}
			name := ""
			for _, a := range addrs {
				if own, ok := mine[a]; ok {
					if own.Scheme != svc.scheme {
						return "", nil, fmt.Errorf("--discovery-srv: the record %s for this member is %s but --initial-advertise-peer-urls has %s; publish it under _etcd-server%s._tcp or advertise %s",
							hostPort, svc.scheme, own.String(), map[string]string{"http": "-ssl", "https": ""}[own.Scheme], u)
					}
					name = cfg.Name
					found = true
					selfURLs = append(selfURLs, u)
					break
				}
			}
			if name == "" {
				name = strconv.Itoa(other)
				other++
			}
			parts = append(parts, name+"="+u)
		}
	}
	if len(parts) == 0 {
		return "", nil, fmt.Errorf("--discovery-srv %q: no SRV records found for %s; publish one record per initial member or use --initial-cluster", d.SRV, strings.Join(names, " or "))
	}
	if !found {
		return "", nil, fmt.Errorf("--discovery-srv %q: none of the SRV records (%s) resolves to this member's --initial-advertise-peer-urls %s; add a record for it or fix the advertised URL",
			d.SRV, strings.Join(parts, ","), strings.Join(config.URLStrings(cfg.InitialAdvertisePeerURLs), ","))
	}
	cluster = strings.Join(parts, ",")
	lg.Info("initial cluster from DNS SRV records", "domain", d.SRV, "initial-cluster", cluster)
	return cluster, selfURLs, nil
}

// resolver is the system resolver, or one that asks only server (host:port).
func resolver(server string) *net.Resolver {
	if server == "" {
		return net.DefaultResolver
	}
	return &net.Resolver{
		PreferGo: true,
		Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, server)
		},
	}
}

// resolveHostPort returns every ip:port hostPort stands for.
func resolveHostPort(ctx context.Context, r *net.Resolver, hostPort string) ([]string, error) {
	host, port, err := net.SplitHostPort(hostPort)
	if err != nil {
		return nil, err
	}
	if ip := net.ParseIP(host); ip != nil {
		return []string{net.JoinHostPort(ip.String(), port)}, nil
	}
	ips, err := r.LookupIPAddr(ctx, host)
	if err != nil {
		return nil, err
	}
	out := make([]string, 0, len(ips))
	for _, ip := range ips {
		out = append(out, net.JoinHostPort(ip.IP.String(), port))
	}
	return out, nil
}
