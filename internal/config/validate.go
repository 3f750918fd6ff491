package config

import (
	"net"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Validate checks the configuration and returns the first problem as a
// one-line error wrapping ErrInvalid, naming the flag, the value and the
// fix. It is pure: no disk, no DNS.
func (c *Config) Validate() error {
	return c.validate(true)
}

// ValidateWithData validates the configuration of a member whose data dir
// already holds state: the bootstrap flags (--initial-cluster and how it
// matches --initial-advertise-peer-urls) no longer matter then, as in
// etcd, so a member restarted on a new peer URL after `member update` may
// keep its old --initial-cluster.
func (c *Config) ValidateWithData() error {
	return c.validate(false)
}

func (c *Config) validate(bootstrap bool) error {
	if err := c.validateChecks(bootstrap); err != nil {
		if c.ConfigFile != "" {
			return inFile(c.ConfigFile, err)
		}
		return err
	}
	return nil
}

func (c *Config) validateChecks(bootstrap bool) error {
	checks := []func() error{
		c.validateIdentity,
		c.validateURLs,
		c.validateRaft,
		c.validateLimits,
		c.validateLogging,
		c.validateLater,
		c.validateDiscovery,
		c.validateJoin,
		c.validateTLS,
		c.validateAuth,
	}
	if bootstrap {
		checks = append(checks, c.validateInitialCluster)
	}
	for _, check := range checks {
		if err := check(); err != nil {
			return err
		}
	}
	return nil
}

func (c *Config) validateIdentity() error {
	if c.Name == "" {
		return invalidf("--name is empty; give this member a name, like --name=infra1")
	}
	if c.DataDir == "" {
		return invalidf("--data-dir is empty; give a directory, like --data-dir=%s%s", c.Name, DataDirSuffix)
	}
	if s := c.InitialClusterState; s != "new" && s != "existing" {
		return invalidf("invalid --initial-cluster-state %q: use new (bootstrap a new cluster) or existing (join a running cluster)", s)
	}
	return nil
}

func (c *Config) validateURLs() error {
	for _, f := range []struct {
		name     string
		urls     []url.URL
		listen   bool
		optional bool
	}{
		{"listen-client-urls", c.ListenClientURLs, true, false},
		{"advertise-client-urls", c.AdvertiseClientURLs, false, false},
		{"listen-peer-urls", c.ListenPeerURLs, true, false},
		{"initial-advertise-peer-urls", c.InitialAdvertisePeerURLs, false, false},
		{"listen-metrics-urls", c.ListenMetricsURLs, true, true},
		{"listen-client-http-urls", c.ListenClientHTTPURLs, true, true},
	} {
		if len(f.urls) == 0 && !f.optional {
			return invalidf("--%s is empty; give at least one URL, like --%s=%s", f.name, f.name, exampleURL(f.name))
		}
		for _, u := range f.urls {
			if err := checkURL(f.name, u, f.listen); err != nil {
				return err
			}
		}
	}
	// One port serves one scheme (etcd can split http and https on one
	// port; Cadre cannot): say so rather than fail to bind.
	for _, f := range []struct {
		name string
		urls []url.URL
	}{{"listen-client-urls", c.ListenClientURLs}, {"listen-peer-urls", c.ListenPeerURLs}} {
		seen := map[string]string{}
		for _, u := range f.urls {
			addr := u.Host + u.Path // unix:///path has only a path
			if prev, ok := seen[addr]; ok {
				return invalidf("invalid --%s: %s and %s use the same address; Cadre serves one scheme per address, so give each its own port", f.name, prev, u.String())
			}
			seen[addr] = u.String()
		}
	}
	// An https metrics URL serves with the client port's certificate.
	for _, u := range c.ListenMetricsURLs {
		if strings.EqualFold(u.Scheme, "https") && !c.TLS.Client.Enabled() {
			return invalidf("invalid --listen-metrics-urls %s: client TLS key/cert (--cert-file, --key-file) must be provided for metrics secure url; give them, or use http:// for the metrics URL", u.String())
		}
	}
	return nil
}

// checkURL applies etcd's URL rules: scheme http, https or unix; host:port
// (unix: a socket name); no path, query, fragment or user info. Listen URLs
// must also be bindable without DNS: an IP address or localhost.
func checkURL(flagName string, u url.URL, listen bool) error {
	shown := u.Redacted() // never echo a password
	example := exampleURL(flagName)
	if s := strings.ToLower(u.Scheme); (s == "unix" || s == "unixs") && u.Host == "" && strings.HasPrefix(u.Path, "/") && u.RawQuery == "" && u.Fragment == "" && u.User == nil {
		return nil // unix:///absolute/path/to.sock
	}
	if u.Scheme == "" || u.Opaque != "" || u.Host == "" {
		return invalidf("invalid --%s %q: URL needs a scheme and host:port, like %s", flagName, shown, example)
	}
	scheme := strings.ToLower(u.Scheme)
	if scheme != "http" && scheme != "https" && scheme != "unix" && scheme != "unixs" {
		return invalidf("invalid --%s %q: scheme %q is not supported; use http, https or unix, like %s", flagName, shown, u.Scheme, example)
	}
	bare := url.URL{Scheme: u.Scheme, Host: u.Host}
	if u.User != nil || u.Path != "" || u.RawPath != "" || u.RawQuery != "" || u.ForceQuery || u.Fragment != "" {
		return invalidf("invalid --%s %q: URL must not have a path, query, fragment or user info; use %s", flagName, shown, bare.String())
	}
	if scheme == "unix" || scheme == "unixs" {
		return nil // the host part names a socket file; no port, no IP rule
	}
	_, examplePort, _ := net.SplitHostPort(strings.TrimPrefix(example, "http://"))
	host, port, err := net.SplitHostPort(u.Host)
	if err != nil {
		fixed := url.URL{Scheme: u.Scheme, Host: net.JoinHostPort(u.Hostname(), examplePort)}
		return invalidf("invalid --%s %q: URL has no port; add one, like %s", flagName, shown, fixed.String())
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return invalidf("invalid --%s %q: port %q is not a number from 0 to 65535", flagName, shown, port)
	}
	if host == "" {
		fixed := url.URL{Scheme: u.Scheme, Host: net.JoinHostPort("127.0.0.1", port)}
		return invalidf("invalid --%s %q: URL has no host; give an IP address or host name, like %s", flagName, shown, fixed.String())
	}
	if !listen {
		return nil // advertised URLs may use host names; peers resolve them
	}
	all := url.URL{Scheme: u.Scheme, Host: net.JoinHostPort("0.0.0.0", port)}
	if net.ParseIP(host) == nil && !strings.EqualFold(host, "localhost") {
		return invalidf("invalid --%s %q: listen URLs must use an IP address or localhost, not the host name %q; use %s to listen on all interfaces or the machine's IP", flagName, shown, host, all.String())
	}
	return nil
}

func (c *Config) validateRaft() error {
	hb, et := c.HeartbeatInterval, c.ElectionTimeout
	if hb <= 0 {
		return invalidf("invalid --heartbeat-interval=%d: it must be more than 0 milliseconds; the default is %d", hb.Milliseconds(), DefaultHeartbeatInterval.Milliseconds())
	}
	if et < 5*hb {
		return invalidf("invalid --election-timeout=%d: it must be at least 5 times --heartbeat-interval=%d, so at least %d; raise --election-timeout or lower --heartbeat-interval", et.Milliseconds(), hb.Milliseconds(), (5 * hb).Milliseconds())
	}
	if et > maxElectionTimeout {
		return invalidf("invalid --election-timeout=%d: it must be at most %d milliseconds", et.Milliseconds(), maxElectionTimeout.Milliseconds())
	}
	return nil
}

func (c *Config) validateLimits() error {
	switch {
	case c.SnapshotCount == 0:
		return invalidf("invalid --snapshot-count=0: it must be at least 1; the default is %d", DefaultSnapshotCount)
	case c.MaxRequestBytes == 0:
		return invalidf("invalid --max-request-bytes=0: it must be at least 1; the default is %d", DefaultMaxRequestBytes)
	case c.MaxTxnOps == 0:
		return invalidf("invalid --max-txn-ops=0: it must be at least 1; the default is %d", DefaultMaxTxnOps)
	case c.MembershipHistory < 1 || c.MembershipHistory > 100000:
		return invalidf("invalid --membership-history %d: expected 1 to 100000 records", c.MembershipHistory)
	case c.MaxLearners < 0:
		return invalidf("invalid --max-learners=%d: it must be 0 or more; the default is %d", c.MaxLearners, DefaultMaxLearners)
	case c.CorruptCheckTime < 0:
		return invalidf("invalid --corrupt-check-time=%s: it must be 0 (off) or a positive duration like 5m", c.CorruptCheckTime)
	case c.CorruptCheckTime > 0 && c.CorruptCheckTime < time.Second:
		return invalidf("invalid --corrupt-check-time=%s: hashing the whole key history that often would starve the member; use 1s or more", c.CorruptCheckTime)
	case c.QuotaBackendBytes < 0:
		return invalidf("invalid --quota-backend-bytes=%d: it must be 0 (the 2 GiB default) or more", c.QuotaBackendBytes)
	case c.WatchProgressNotifyInterval < 0:
		return invalidf("invalid --watch-progress-notify-interval=%s: use a positive duration like 10m (0 means the 10m default)", c.WatchProgressNotifyInterval)
	case c.BackendBatchInterval < 0:
		return invalidf("invalid --backend-batch-interval=%s: use a positive duration like 100ms (0 means the default)", c.BackendBatchInterval)
	case c.BackendBatchLimit < 0:
		return invalidf("invalid --backend-batch-limit=%d: use a positive count like 10000 (0 means the default)", c.BackendBatchLimit)
	case c.CompactionBatchLimit < 0:
		return invalidf("invalid --compaction-batch-limit=%d: use a positive count like 1000 (0 means the default)", c.CompactionBatchLimit)
	case c.CompactionSleepInterval < 0:
		return invalidf("invalid --compaction-sleep-interval=%s: use a positive duration like 10ms (0 means the default)", c.CompactionSleepInterval)
	}
	for _, d := range []struct {
		flag string
		v    time.Duration
	}{{"grpc-keepalive-min-time", c.GRPCKeepAliveMinTime}, {"grpc-keepalive-interval", c.GRPCKeepAliveInterval}, {"grpc-keepalive-timeout", c.GRPCKeepAliveTimeout}} {
		if d.v < 0 {
			return invalidf("invalid --%s=%s: it must not be negative", d.flag, d.v)
		}
	}
	return nil
}

func (c *Config) validateLogging() error {
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		return invalidf("invalid --log-level %q: use debug, info, warn or error", c.LogLevel)
	}
	if c.Logger != "zap" {
		return invalidf("invalid --logger %q: cadre has only the zap-style JSON logger; use --logger=zap or leave it out", c.Logger)
	}
	for _, o := range c.LogOutputs {
		if o != "stderr" && o != "stdout" && o != "default" {
			return invalidf("invalid --log-outputs %q: cadre can log only to stderr, stdout or default (stderr); use --log-outputs=stderr", o)
		}
	}
	return nil
}

// validateLater checks flags accepted for etcd compatibility whose feature
// comes later, refusing those that would otherwise silently misbehave.
func (c *Config) validateLater() error {
	retention := c.AutoCompactionRetention
	if retention == "" {
		retention = "0"
	}
	switch c.AutoCompactionMode {
	case "periodic":
		if n, err := strconv.Atoi(retention); err == nil {
			if n < 0 {
				return invalidf("invalid --auto-compaction-retention %q: it must not be negative", retention)
			}
		} else if d, err := time.ParseDuration(retention); err != nil || d < 0 {
			return invalidf("invalid --auto-compaction-retention %q for --auto-compaction-mode=periodic: use hours as an integer, like 1, or a duration, like 30m", retention)
		}
	case "revision":
		if n, err := strconv.ParseInt(retention, 10, 64); err != nil || n < 0 {
			return invalidf("invalid --auto-compaction-retention %q for --auto-compaction-mode=revision: use a number of revisions, like 1000", retention)
		}
	default:
		return invalidf("invalid --auto-compaction-mode %q: use periodic or revision", c.AutoCompactionMode)
	}
	return nil
}

func (c *Config) validateInitialCluster() error {
	if len(c.InitialCluster) == 0 {
		return invalidf("--initial-cluster is empty; list every member as name=peerURL, like --initial-cluster=%s", initialClusterFor(c.Name, c.InitialAdvertisePeerURLs))
	}
	text := c.clusterText()
	names := make([]string, 0, len(c.InitialCluster))
	for n := range c.InitialCluster {
		names = append(names, n)
	}
	sort.Strings(names)

	owner := map[string]string{} // urlKey -> member name
	for _, n := range names {
		urls := c.InitialCluster[n]
		if len(urls) == 0 {
			return invalidf("--initial-cluster %q has no peer URL for %q; add %s=<its peer URL>", text, n, n)
		}
		if n == "" && c.InitialClusterState == "new" {
			return invalidf("--initial-cluster %q has a member without a name (%q); with --initial-cluster-state=new every member needs its --name, like infra2=%s", text, "="+urls[0].String(), urls[0].String())
		}
		for _, u := range urls {
			if err := checkURL("initial-cluster", u, false); err != nil {
				return err
			}
			k := urlKey(u)
			if prev, dup := owner[k]; dup {
				if prev == n {
					return invalidf("--initial-cluster %q lists peer URL %s twice for %q; list each URL once", text, u.String(), n)
				}
				return invalidf("--initial-cluster %q lists peer URL %s for both %q and %q; every member needs its own peer URLs", text, u.String(), prev, n)
			}
			owner[k] = n
		}
	}

	mine, ok := c.InitialCluster[c.Name]
	adv := joinURLs(c.InitialAdvertisePeerURLs)
	if !ok {
		return invalidf("--name %q is not in --initial-cluster %q; add %s to --initial-cluster or fix --name", c.Name, text, initialClusterFor(c.Name, c.InitialAdvertisePeerURLs))
	}
	if !sameURLSet(mine, c.InitialAdvertisePeerURLs) {
		return invalidf("--initial-advertise-peer-urls %q does not match the peer URLs of %q in --initial-cluster (%s); they must list the same URLs: use --initial-advertise-peer-urls=%s, or --initial-cluster=%s",
			adv, c.Name, joinURLs(mine), joinURLs(mine), c.clusterWith(c.Name, c.InitialAdvertisePeerURLs))
	}
	return nil
}

// sameURLSet is etcd's rule: this member's --initial-cluster URLs and its
// advertised peer URLs are the same set (order and repeats aside).
func sameURLSet(a, b []url.URL) bool {
	set := func(us []url.URL) map[string]bool {
		m := map[string]bool{}
		for _, u := range us {
			m[urlKey(u)] = true
		}
		return m
	}
	sa, sb := set(a), set(b)
	if len(sa) != len(sb) {
		return false
	}
	for k := range sa {
		if !sb[k] {
			return false
		}
	}
	return true
}
