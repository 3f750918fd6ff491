package config

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Environment variable prefixes, in precedence order (first wins).
const (
	EnvPrefixCadre = "CADRE_"
	EnvPrefixEtcd  = "ETCD_"
)

// rawFlags holds flag values that need a second pass after flags and the
// environment are both applied (lists, URLs, computed defaults).
type rawFlags struct {
	listenClient, advertiseClient, listenPeer, advertisePeer, listenMetrics string
	listenClientHTTP                                                        string
	initialCluster, logOutputs, discoveryEndpoints                          string
	featureGates                                                            string
	configFile                                                              string
	join                                                                    joinRaw
	version                                                                 bool
	tls                                                                     tlsRaw
	compat                                                                  map[string]*compatValue
}

// msFlag is an integer number of milliseconds stored as a time.Duration,
// the form etcd uses for --heartbeat-interval and --election-timeout.
type msFlag struct{ d *time.Duration }

func (m msFlag) String() string {
	if m.d == nil {
		return "0"
	}
	return strconv.FormatInt(m.d.Milliseconds(), 10)
}

func (m msFlag) Set(s string) error {
	n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
	if err != nil {
		return errors.New("expected an integer number of milliseconds, like 100")
	}
	*m.d = time.Duration(n) * time.Millisecond
	return nil
}

// newFlagSet defines every flag, writing into c and r with c's values as
// defaults. One FlagSet per call: no global flag state.
func newFlagSet(c *Config, r *rawFlags) *flag.FlagSet {
	fs := flag.NewFlagSet("cadre", flag.ContinueOnError)
	fs.SetOutput(io.Discard) // errors are returned, never printed
	fs.Usage = func() {}

	fs.StringVar(&c.Name, "name", c.Name, "Human-readable name for this member.")
	fs.StringVar(&c.DataDir, "data-dir", "", `Path to the data directory (default "<name>`+DataDirSuffix+`").`)

	r.listenClient = joinURLs(c.ListenClientURLs)
	r.advertiseClient = joinURLs(c.AdvertiseClientURLs)
	r.listenPeer = joinURLs(c.ListenPeerURLs)
	r.advertisePeer = joinURLs(c.InitialAdvertisePeerURLs)
	r.listenMetrics = joinURLs(c.ListenMetricsURLs)
	fs.StringVar(&r.listenClient, "listen-client-urls", r.listenClient, "List of `URLs` to listen on for client traffic (IP addresses or localhost).")
	fs.StringVar(&r.advertiseClient, "advertise-client-urls", r.advertiseClient, "List of this member's client `URLs` to advertise to the rest of the cluster.")
	fs.StringVar(&r.listenPeer, "listen-peer-urls", r.listenPeer, "List of `URLs` to listen on for peer traffic (IP addresses or localhost).")
	fs.StringVar(&r.advertisePeer, "initial-advertise-peer-urls", r.advertisePeer, "List of this member's peer `URLs` to advertise to the rest of the cluster.")
	fs.StringVar(&r.listenMetrics, "listen-metrics-urls", r.listenMetrics, "List of additional `URLs` to serve /metrics and /health on.")
	r.listenClientHTTP = joinURLs(c.ListenClientHTTPURLs)
	fs.StringVar(&r.listenClientHTTP, "listen-client-http-urls", r.listenClientHTTP, "List of `URLs` to serve the HTTP endpoints (health, metrics, version, gateway) on; when set, --listen-client-urls serve gRPC only.")

	fs.StringVar(&r.initialCluster, "initial-cluster", "", `Initial cluster configuration for bootstrapping, name=peerURL,... (default "<name>=<initial-advertise-peer-urls>").`)
	fs.StringVar(&c.InitialClusterState, "initial-cluster-state", c.InitialClusterState, "Initial cluster state: new (bootstrap a new cluster) or existing (join a running one).")
	fs.StringVar(&c.InitialClusterToken, "initial-cluster-token", c.InitialClusterToken, "Initial cluster token for the cluster during bootstrap.")

	fs.Var(msFlag{&c.HeartbeatInterval}, "heartbeat-interval", "Time (in `milliseconds`) of a heartbeat interval.")
	fs.Var(msFlag{&c.ElectionTimeout}, "election-timeout", "Time (in `milliseconds`) for an election to timeout.")
	fs.Uint64Var(&c.SnapshotCount, "snapshot-count", c.SnapshotCount, "Number of committed transactions to trigger a snapshot to disk.")
	fs.Uint64Var(&c.SnapshotCatchUpEntries, "snapshot-catchup-entries", c.SnapshotCatchUpEntries, "Number of entries kept after a snapshot so slow followers can catch up.")
	fs.UintVar(&c.BootstrapDefragThresholdMB, "bootstrap-defrag-threshold-megabytes", c.BootstrapDefragThresholdMB, "Defragment the backend at start when at least that many MB would be freed (0: never).")
	fs.UintVar(&c.MaxRequestBytes, "max-request-bytes", c.MaxRequestBytes, "Maximum client request size in bytes the server will accept.")
	fs.UintVar(&c.MaxTxnOps, "max-txn-ops", c.MaxTxnOps, "Maximum number of operations permitted in a transaction.")
	fs.BoolVar(&c.StrictReconfigCheck, "strict-reconfig-check", c.StrictReconfigCheck, "Reject reconfiguration requests that would cause quorum loss.")
	fs.IntVar(&c.MaxLearners, "max-learners", c.MaxLearners, "Maximum number of learner members in the cluster.")
	fs.IntVar(&c.MembershipHistory, "membership-history", c.MembershipHistory, "Cadre: how many applied membership changes the audit trail keeps (cadrectl member history).")
	fs.Int64Var(&c.QuotaBackendBytes, "quota-backend-bytes", c.QuotaBackendBytes, "Raise alarms when backend size exceeds the given quota (0 means 2 GiB).")
	fs.BoolVar(&c.EnablePprof, "enable-pprof", c.EnablePprof, "Enable runtime profiling data via HTTP server at /debug/pprof.")
	fs.BoolVar(&c.DisableDashboard, "disable-dashboard", c.DisableDashboard, "Do not serve the web dashboard (/ui/ and /cadre/v1/dashboard) on the client URLs.")
	fs.BoolVar(&c.InitialCorruptCheck, "initial-corrupt-check", c.InitialCorruptCheck, "Compare this member's data with its peers' before serving clients (refuse to start on a mismatch).")
	fs.StringVar(&r.featureGates, "feature-gates", "", "etcd's server feature gates, Name=true|false,... (InitialCorruptCheck acts as --initial-corrupt-check; the others are accepted).")
	fs.DurationVar(&c.CorruptCheckTime, "corrupt-check-time", c.CorruptCheckTime, "Period of the leader's data corruption check across members, e.g. 5m (0 disables); a mismatch raises the CORRUPT alarm.")
	fs.DurationVar(&c.WatchProgressNotifyInterval, "watch-progress-notify-interval", c.WatchProgressNotifyInterval, "How often a watch created with progress notification that had no events gets an empty response with the current revision.")
	fs.DurationVar(&c.GRPCKeepAliveMinTime, "grpc-keepalive-min-time", c.GRPCKeepAliveMinTime, "Minimum interval a client should wait before pinging the server.")
	fs.DurationVar(&c.GRPCKeepAliveInterval, "grpc-keepalive-interval", c.GRPCKeepAliveInterval, "Frequency of server-to-client pings checking that a connection is alive (0 disables).")
	fs.DurationVar(&c.GRPCKeepAliveTimeout, "grpc-keepalive-timeout", c.GRPCKeepAliveTimeout, "Additional wait before closing a non-responsive connection (0 disables).")
	fs.Var(uint32Flag{&c.MaxConcurrentStreams}, "max-concurrent-streams", "Maximum concurrent gRPC streams each client connection can open.")
	fs.DurationVar(&c.BackendBatchInterval, "backend-batch-interval", c.BackendBatchInterval, "Maximum time applied writes wait before the backend commits them (0 = 100ms).")
	fs.IntVar(&c.BackendBatchLimit, "backend-batch-limit", c.BackendBatchLimit, "Maximum applied writes in one backend commit (0 = 10000).")
	fs.IntVar(&c.CompactionBatchLimit, "compaction-batch-limit", c.CompactionBatchLimit, "Maximum revisions deleted in each compaction batch (0 = 1000); compacted revisions are deleted in the background.")
	fs.DurationVar(&c.CompactionSleepInterval, "compaction-sleep-interval", c.CompactionSleepInterval, "Sleep between compaction batches (0 = 10ms).")

	fs.StringVar(&c.LogLevel, "log-level", c.LogLevel, "Log level: debug, info, warn or error.")
	fs.StringVar(&c.Logger, "logger", c.Logger, "Logger implementation; only zap (JSON logs like etcd's).")
	r.logOutputs = strings.Join(c.LogOutputs, ",")
	fs.StringVar(&r.logOutputs, "log-outputs", r.logOutputs, "Where to write logs: stderr, stdout or default (stderr).")

	fs.StringVar(&c.AutoCompactionMode, "auto-compaction-mode", c.AutoCompactionMode, "Auto compaction mode: periodic or revision.")
	fs.StringVar(&c.AutoCompactionRetention, "auto-compaction-retention", c.AutoCompactionRetention, "Auto compaction retention: hours or a duration for periodic, a revision count for revision (0 disables).")
	fs.BoolVar(&c.ForceNewCluster, "force-new-cluster", c.ForceNewCluster, "Force to create a new one member cluster from this member's data.")
	fs.BoolVar(&c.EnableV2, "enable-v2", c.EnableV2, "Ignored: cadre serves only the v3 API (accepted for etcd compatibility).")
	defineDiscoveryFlags(fs, &c.Discovery, r)
	defineJoinFlags(fs, &c.Join, &r.join)
	defineTLSFlags(fs, &c.TLS, &r.tls)
	fs.UintVar(&c.SelfSignedCertValidity, "self-signed-cert-validity", c.SelfSignedCertValidity, "Lifetime in years of the certificates --auto-tls and --peer-auto-tls generate.")
	defineAuthFlags(fs, &c.Auth)
	r.compat = defineCompatFlags(fs)
	defineAliases(fs)

	fs.StringVar(&r.configFile, "config-file", "", "Path to an etcd YAML configuration file; when given, the other flags and the environment are ignored (as in etcd).")
	fs.BoolVar(&r.version, "version", false, "Print the version and exit.")
	return fs
}

// uint32Flag parses a 32-bit count such as --max-concurrent-streams.
type uint32Flag struct{ p *uint32 }

func (u uint32Flag) String() string {
	if u.p == nil {
		return "0"
	}
	return strconv.FormatUint(uint64(*u.p), 10)
}

func (u uint32Flag) Set(s string) error {
	n, err := strconv.ParseUint(strings.TrimSpace(s), 10, 32)
	if err != nil {
		return errors.New("expected a whole number from 0 to 4294967295")
	}
	*u.p = uint32(n)
	return nil
}

// commandLineOnly flags are never read from the environment: a stray
// ETCD_VERSION (common in container images) must not turn the server into
// a version printer.
func commandLineOnly(name string) bool { return name == "version" }

// Parse parses args (without argv[0]) and environ (os.Environ() format)
// into a Config with defaults applied. It does not validate; call
// Validate. Warnings (unknown or shadowed environment variables, ignored
// flags) are returned for the caller to log. -h/--help returns ErrHelp,
// --version returns ErrVersion. With --config-file (or CADRE_CONFIG_FILE,
// ETCD_CONFIG_FILE) the configuration comes from that YAML file alone.
func Parse(args, environ []string) (*Config, []string, error) {
	c := Default()
	var r rawFlags
	fs := newFlagSet(c, &r)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil, nil, ErrHelp
		}
		return nil, nil, usageErrorf("%v; run 'cadre --help' to list the flags", err)
	}
	if r.version {
		return nil, nil, ErrVersion
	}
	if rest := fs.Args(); len(rest) > 0 {
		return nil, nil, usageErrorf("unexpected argument %q: cadre takes only flags, like --name=infra1; run 'cadre --help' to list the flags", rest[0])
	}
	if path := configFilePath(r.configFile, environ); path != "" {
		return parseFile(path, fs, environ)
	}

	warnings, err := applyEnv(fs, environ)
	if err != nil {
		return nil, warnings, err
	}
	return complete(c, &r, fs, warnings)
}

// complete turns parsed flags (from the command line and environment, or
// from a config file) into the final Config and its warnings.
func complete(c *Config, r *rawFlags, fs *flag.FlagSet, warnings []string) (*Config, []string, error) {
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })

	aw, err := checkAliases(set)
	if err != nil {
		return nil, warnings, err
	}
	warnings = append(warnings, aw...)
	if err := finish(c, r, set); err != nil {
		return nil, warnings, err
	}
	gw, err := applyFeatureGates(c, r.featureGates, set)
	if err != nil {
		return nil, warnings, err
	}
	warnings = append(warnings, gw...)
	warnings = append(warnings, compatWarnings(r.compat, set)...)
	for _, f := range []struct{ name, val string }{{"client-cert-file", c.TLS.Client.ClientCertFile}, {"client-key-file", c.TLS.Client.ClientKeyFile}} {
		if f.val != "" {
			// etcd presents this pair only when dialing its own client
			// port (the gRPC gateway's loopback), which Cadre never does.
			warnings = append(warnings, fmt.Sprintf("--%s=%s is accepted for etcd compatibility, has no effect: Cadre never dials its own client port (the pair is still checked at start)", f.name, f.val))
		}
	}
	if c.EnableV2 {
		warnings = append(warnings, "--enable-v2 is ignored: cadre serves only the v3 API")
	}
	return c, warnings, nil
}

// finish turns the raw string flags into typed fields and fills the
// defaults that depend on other flags.
func finish(c *Config, r *rawFlags, set map[string]bool) error {
	for _, f := range []struct {
		name string
		raw  string
		dst  *[]url.URL
	}{
		{"listen-client-urls", r.listenClient, &c.ListenClientURLs},
		{"advertise-client-urls", r.advertiseClient, &c.AdvertiseClientURLs},
		{"listen-peer-urls", r.listenPeer, &c.ListenPeerURLs},
		{"initial-advertise-peer-urls", r.advertisePeer, &c.InitialAdvertisePeerURLs},
		{"listen-metrics-urls", r.listenMetrics, &c.ListenMetricsURLs},
		{"listen-client-http-urls", r.listenClientHTTP, &c.ListenClientHTTPURLs},
	} {
		us, err := parseURLList(f.name, f.raw)
		if err != nil {
			return err
		}
		*f.dst = us
	}
	if !set["data-dir"] {
		c.DataDir = c.Name + DataDirSuffix
	}
	c.InitialClusterSet = set["initial-cluster"]
	if set["initial-cluster"] {
		c.InitialClusterRaw = r.initialCluster
	} else {
		// etcd's rule: this member alone, at its advertised peer URLs.
		c.InitialClusterRaw = initialClusterFor(c.Name, c.InitialAdvertisePeerURLs)
	}
	m, err := parseInitialCluster(c.InitialClusterRaw)
	if err != nil {
		return err
	}
	c.InitialCluster = m
	c.LogOutputs = splitList(r.logOutputs)
	c.Discovery.Endpoints = splitList(r.discoveryEndpoints)
	if err := c.Join.finish(&r.join, set); err != nil {
		return err
	}
	c.TLS.finish(&r.tls)
	return nil
}

// applyEnv sets every flag not given on the command line from CADRE_<FLAG>
// or else ETCD_<FLAG>, and reports unknown and shadowed variables.
func applyEnv(fs *flag.FlagSet, environ []string) ([]string, error) {
	env, order := envMap(environ)
	onCLI := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { onCLI[f.Name] = true })

	var warnings []string
	var firstErr error
	fs.VisitAll(func(f *flag.Flag) {
		if commandLineOnly(f.Name) || firstErr != nil {
			return
		}
		cadreKey, etcdKey := EnvKey(EnvPrefixCadre, f.Name), EnvKey(EnvPrefixEtcd, f.Name)
		cadreVal, etcdVal := env[cadreKey], env[etcdKey]
		if onCLI[f.Name] {
			for _, k := range []string{cadreKey, etcdKey} {
				if env[k] != "" {
					warnings = append(warnings, fmt.Sprintf("conflicting environment variable %q is shadowed by corresponding command-line flag (either unset environment variable or disable flag)", k))
				}
			}
			return
		}
		key, val := cadreKey, cadreVal
		if val == "" {
			key, val = etcdKey, etcdVal
		} else if etcdVal != "" {
			warnings = append(warnings, fmt.Sprintf("environment variable %q is shadowed by %q (CADRE_ takes precedence over ETCD_); unset one of them", etcdKey, cadreKey))
		}
		if val == "" {
			return
		}
		if err := fs.Set(f.Name, val); err != nil {
			firstErr = usageErrorf("invalid value %q in environment variable %s for --%s: %v", val, key, f.Name, err)
		}
	})
	if firstErr != nil {
		return warnings, firstErr
	}

	for _, k := range order {
		var rest string
		switch {
		case strings.HasPrefix(k, EnvPrefixCadre):
			rest = k[len(EnvPrefixCadre):]
		case strings.HasPrefix(k, EnvPrefixEtcd):
			// ETCDCTL_* never gets here ("ETCDCTL_" lacks the "ETCD_" prefix).
			rest = k[len(EnvPrefixEtcd):]
		default:
			continue
		}
		name := strings.ReplaceAll(strings.ToLower(rest), "_", "-")
		switch {
		case commandLineOnly(name):
			warnings = append(warnings, fmt.Sprintf("environment variable %s=%s is ignored: --%s can only be given on the command line", k, env[k], name))
		case fs.Lookup(name) == nil || EnvKey(k[:len(k)-len(rest)], name) != k:
			warnings = append(warnings, fmt.Sprintf("unrecognized environment variable %s=%s (no flag --%s); ignoring it", k, env[k], name))
		}
	}
	return warnings, nil
}

// EnvKey is the environment variable for a flag: prefix + the flag name
// upper-cased with '-' as '_' (EnvKey("ETCD_", "initial-cluster") ==
// "ETCD_INITIAL_CLUSTER").
func EnvKey(prefix, flagName string) string {
	return prefix + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// envMap indexes environ; like getenv, the first of duplicate keys wins.
// Empty values count as unset, as in etcd.
func envMap(environ []string) (map[string]string, []string) {
	m := map[string]string{}
	var order []string
	for _, kv := range environ {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			continue
		}
		if _, dup := m[k]; dup {
			continue
		}
		m[k] = v
		order = append(order, k)
	}
	return m, order
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// Usage returns the help text for `cadre --help`.
func Usage() string {
	var r rawFlags
	fs := newFlagSet(Default(), &r)
	var b strings.Builder
	b.WriteString(`Usage: cadre [flags]

Cadre is an etcd-compatible, Raft-replicated key-value server. It takes
etcd's flags, as --flag=value, --flag value or -flag=value. Every flag can
also come from the environment as CADRE_<FLAG> or ETCD_<FLAG> (upper case,
'-' as '_', e.g. ETCD_INITIAL_CLUSTER); a command-line flag beats CADRE_,
which beats ETCD_, which beats the default.

--config-file (or CADRE_CONFIG_FILE, ETCD_CONFIG_FILE) reads etcd's YAML
configuration file instead; as in etcd, the other flags and environment
variables are then ignored (Cadre warns about each one).

Flags:
`)
	var compat, aliases []string
	fs.VisitAll(func(f *flag.Flag) {
		switch {
		case isCompat(f.Name):
			compat = append(compat, "--"+f.Name)
			return
		case experimentalAliases[f.Name] != "":
			aliases = append(aliases, "--"+f.Name+" (--"+experimentalAliases[f.Name]+")")
			return
		}
		typ, usage := flag.UnquoteUsage(f)
		fmt.Fprintf(&b, "  --%s", f.Name)
		if typ != "" {
			fmt.Fprintf(&b, " %s", typ)
		}
		fmt.Fprintf(&b, "\n        %s", usage)
		if f.DefValue != "" && f.DefValue != "false" && f.DefValue != "0" {
			fmt.Fprintf(&b, " (default %q)", f.DefValue)
		}
		b.WriteString("\n")
	})
	b.WriteString("  -h, --help\n        Show this help.\n")
	fmt.Fprintf(&b, "\nAccepted for etcd compatibility, with no effect (a warning names each one given):\n%s\n", wrap(compat))
	fmt.Fprintf(&b, "\nDeprecated etcd v3.5 names, still accepted (with a warning) for the flag in parentheses:\n%s\n", wrap(aliases))
	return b.String()
}

// wrap lays words out in indented lines of at most 80 columns.
func wrap(words []string) string {
	var b strings.Builder
	line := " "
	for _, w := range words {
		if len(line) > 1 && len(line)+1+len(w) > 80 {
			b.WriteString(line + "\n")
			line = " "
		}
		line += " " + w
	}
	b.WriteString(line)
	return b.String()
}
