package config

import (
	"strings"
	"testing"
	"time"
)

// etcdFlag is one flag of etcd v3.7.3's `etcd --help` (server/etcdmain/
// help.go, plus the flags server/embed/config.go and etcdmain/config.go
// define that help.go forgets), a value etcd accepts for it, and how
// Cadre is expected to take it: acts (check sees the effect) or accepted
// with a warning naming the flag.
type etcdFlag struct {
	name, value string
	check       func(*Config) bool // nil: no effect, a warning names the flag
}

var etcdV373Flags = []etcdFlag{
	// Member.
	{"name", "infra1", func(c *Config) bool { return c.Name == "infra1" }},
	{"data-dir", "/var/lib/x", func(c *Config) bool { return c.DataDir == "/var/lib/x" }},
	{"wal-dir", "/var/lib/wal", nil},
	{"snapshot-count", "42", func(c *Config) bool { return c.SnapshotCount == 42 }},
	{"heartbeat-interval", "200", func(c *Config) bool { return c.HeartbeatInterval == 200*time.Millisecond }},
	{"election-timeout", "2000", func(c *Config) bool { return c.ElectionTimeout == 2*time.Second }},
	{"initial-election-tick-advance", "false", nil},
	{"listen-peer-urls", "http://127.0.0.1:12380", func(c *Config) bool { return joinURLs(c.ListenPeerURLs) == "http://127.0.0.1:12380" }},
	{"listen-client-urls", "http://127.0.0.1:12379", func(c *Config) bool { return joinURLs(c.ListenClientURLs) == "http://127.0.0.1:12379" }},
	{"listen-client-http-urls", "http://127.0.0.1:12381", func(c *Config) bool { return joinURLs(c.ListenClientHTTPURLs) == "http://127.0.0.1:12381" }},
	{"max-snapshots", "3", nil},
	{"max-wals", "3", nil},
	{"memory-mlock", "true", nil},
	{"quota-backend-bytes", "1024", func(c *Config) bool { return c.QuotaBackendBytes == 1024 }},
	{"backend-bbolt-freelist-type", "array", nil},
	{"backend-batch-interval", "50ms", func(c *Config) bool { return c.BackendBatchInterval == 50*time.Millisecond }},
	{"backend-batch-limit", "500", func(c *Config) bool { return c.BackendBatchLimit == 500 }},
	{"max-txn-ops", "64", func(c *Config) bool { return c.MaxTxnOps == 64 }},
	{"max-request-bytes", "1000", func(c *Config) bool { return c.MaxRequestBytes == 1000 }},
	{"max-concurrent-streams", "100", func(c *Config) bool { return c.MaxConcurrentStreams == 100 }},
	{"grpc-keepalive-min-time", "1s", func(c *Config) bool { return c.GRPCKeepAliveMinTime == time.Second }},
	{"grpc-keepalive-interval", "1h", func(c *Config) bool { return c.GRPCKeepAliveInterval == time.Hour }},
	{"grpc-keepalive-timeout", "10s", func(c *Config) bool { return c.GRPCKeepAliveTimeout == 10*time.Second }},
	{"socket-reuse-port", "true", nil},
	{"socket-reuse-address", "true", nil},
	{"enable-grpc-gateway", "false", nil},
	{"raft-read-timeout", "7s", nil},
	{"raft-write-timeout", "7s", nil},
	{"feature-gates", "InitialCorruptCheck=false", func(c *Config) bool { return !c.InitialCorruptCheck }},
	// Clustering.
	{"initial-advertise-peer-urls", "http://10.0.0.1:2380", func(c *Config) bool { return joinURLs(c.InitialAdvertisePeerURLs) == "http://10.0.0.1:2380" }},
	{"initial-cluster", "a=http://10.0.0.1:2380", func(c *Config) bool { return c.InitialClusterRaw == "a=http://10.0.0.1:2380" }},
	{"initial-cluster-state", "existing", func(c *Config) bool { return c.InitialClusterState == "existing" }},
	{"initial-cluster-token", "tok", func(c *Config) bool { return c.InitialClusterToken == "tok" }},
	{"advertise-client-urls", "http://10.0.0.1:2379", func(c *Config) bool { return joinURLs(c.AdvertiseClientURLs) == "http://10.0.0.1:2379" }},
	{"discovery", "", func(*Config) bool { return true }}, // empty is accepted; a URL is refused (TestV2DiscoveryRefused)
	{"discovery-token", "t1", func(c *Config) bool { return c.Discovery.Token == "t1" }},
	{"discovery-endpoints", "http://10.0.0.9:2379", func(c *Config) bool { return strings.Join(c.Discovery.Endpoints, ",") == "http://10.0.0.9:2379" }},
	{"discovery-dial-timeout", "3s", func(c *Config) bool { return c.Discovery.DialTimeout == 3*time.Second }},
	{"discovery-request-timeout", "3s", func(c *Config) bool { return c.Discovery.RequestTimeout == 3*time.Second }},
	{"discovery-keepalive-time", "3s", func(c *Config) bool { return c.Discovery.KeepAliveTime == 3*time.Second }},
	{"discovery-keepalive-timeout", "3s", func(c *Config) bool { return c.Discovery.KeepAliveTimeout == 3*time.Second }},
	{"discovery-insecure-transport", "false", func(c *Config) bool { return !c.Discovery.InsecureTransport }},
	{"discovery-insecure-skip-tls-verify", "true", func(c *Config) bool { return c.Discovery.InsecureSkipTLSVerify }},
	{"discovery-cert", "d.crt", func(c *Config) bool { return c.Discovery.CertFile == "d.crt" }},
	{"discovery-key", "d.key", func(c *Config) bool { return c.Discovery.KeyFile == "d.key" }},
	{"discovery-cacert", "ca.crt", func(c *Config) bool { return c.Discovery.CACertFile == "ca.crt" }},
	{"discovery-user", "u", func(c *Config) bool { return c.Discovery.User == "u" }},
	{"discovery-password", "p", func(c *Config) bool { return c.Discovery.Password == "p" }},
	{"discovery-fallback", "exit", func(*Config) bool { return true }},
	{"discovery-proxy", "http://proxy:3128", nil},
	{"discovery-srv", "example.com", func(c *Config) bool { return c.Discovery.SRV == "example.com" }},
	{"discovery-srv-name", "x", func(c *Config) bool { return c.Discovery.SRVName == "x" }},
	{"strict-reconfig-check", "false", func(c *Config) bool { return !c.StrictReconfigCheck }},
	{"pre-vote", "false", nil},
	{"auto-compaction-retention", "2", func(c *Config) bool { return c.AutoCompactionRetention == "2" }},
	{"auto-compaction-mode", "revision", func(c *Config) bool { return c.AutoCompactionMode == "revision" }},
	{"v2-deprecation", "write-only", nil},
	// Security.
	{"cert-file", "s.crt", func(c *Config) bool { return c.TLS.Client.CertFile == "s.crt" }},
	{"key-file", "s.key", func(c *Config) bool { return c.TLS.Client.KeyFile == "s.key" }},
	{"client-cert-auth", "true", func(c *Config) bool { return c.TLS.Client.ClientCertAuth }},
	{"client-cert-file", "c.crt", nil}, // checked at start; Cadre never dials its own client port
	{"client-key-file", "c.key", nil},
	{"client-crl-file", "c.crl", func(c *Config) bool { return c.TLS.Client.CRLFile == "c.crl" }},
	{"client-cert-allowed-hostname", "a.example,b.example", func(c *Config) bool { return strings.Join(c.TLS.Client.AllowedHostnames, " ") == "a.example b.example" }},
	{"trusted-ca-file", "ca.crt", func(c *Config) bool { return c.TLS.Client.TrustedCAFile == "ca.crt" }},
	{"auto-tls", "true", func(c *Config) bool { return c.TLS.Client.AutoTLS }},
	{"peer-cert-file", "p.crt", func(c *Config) bool { return c.TLS.Peer.CertFile == "p.crt" }},
	{"peer-key-file", "p.key", func(c *Config) bool { return c.TLS.Peer.KeyFile == "p.key" }},
	{"peer-client-cert-auth", "true", func(c *Config) bool { return c.TLS.Peer.ClientCertAuth }},
	{"peer-client-cert-file", "pc.crt", func(c *Config) bool { return c.TLS.Peer.ClientCertFile == "pc.crt" }},
	{"peer-client-key-file", "pc.key", func(c *Config) bool { return c.TLS.Peer.ClientKeyFile == "pc.key" }},
	{"peer-trusted-ca-file", "pca.crt", func(c *Config) bool { return c.TLS.Peer.TrustedCAFile == "pca.crt" }},
	{"peer-cert-allowed-cn", "infra1,infra2", func(c *Config) bool { return strings.Join(c.TLS.Peer.AllowedCNs, " ") == "infra1 infra2" }},
	{"peer-cert-allowed-hostname", "a.example,b.example", func(c *Config) bool { return strings.Join(c.TLS.Peer.AllowedHostnames, " ") == "a.example b.example" }},
	{"peer-auto-tls", "true", func(c *Config) bool { return c.TLS.Peer.AutoTLS }},
	{"self-signed-cert-validity", "3", func(c *Config) bool { return c.SelfSignedCertValidity == 3 }},
	{"peer-crl-file", "p.crl", func(c *Config) bool { return c.TLS.Peer.CRLFile == "p.crl" }},
	{"cipher-suites", "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", func(c *Config) bool { return len(c.TLS.CipherSuites) == 1 }},
	{"cors", "https://example.com", nil},
	{"host-whitelist", "example.com", nil},
	{"tls-min-version", "TLS1.3", func(c *Config) bool { return c.TLS.MinVersion == "TLS1.3" }},
	{"tls-max-version", "TLS1.3", func(c *Config) bool { return c.TLS.MaxVersion == "TLS1.3" }},
	// Auth.
	{"auth-token", "jwt,pub-key=a.pub", func(c *Config) bool { return c.Auth.Token == "jwt,pub-key=a.pub" }},
	{"bcrypt-cost", "12", func(c *Config) bool { return c.Auth.BcryptCost == 12 }},
	{"auth-token-ttl", "60", func(c *Config) bool { return c.Auth.TokenTTL == 60 }},
	// Profiling and monitoring.
	{"enable-pprof", "true", func(c *Config) bool { return c.EnablePprof }},
	{"metrics", "extensive", nil},
	{"listen-metrics-urls", "http://127.0.0.1:2381", func(c *Config) bool { return joinURLs(c.ListenMetricsURLs) == "http://127.0.0.1:2381" }},
	// Logging.
	{"logger", "zap", func(c *Config) bool { return c.Logger == "zap" }},
	{"log-outputs", "stdout", func(c *Config) bool { return strings.Join(c.LogOutputs, ",") == "stdout" }},
	{"log-level", "debug", func(c *Config) bool { return c.LogLevel == "debug" }},
	{"log-format", "console", nil},
	{"enable-log-rotation", "true", nil},
	{"log-rotation-config-json", `{"maxsize": 10}`, nil},
	{"warning-unary-request-duration", "1s", nil},
	// Distributed tracing.
	{"enable-distributed-tracing", "true", nil},
	{"distributed-tracing-address", "localhost:4318", nil},
	{"distributed-tracing-service-name", "cadre", nil},
	{"distributed-tracing-instance-id", "i1", nil},
	{"distributed-tracing-sampling-rate", "10", nil},
	// Features.
	{"corrupt-check-time", "5m", func(c *Config) bool { return c.CorruptCheckTime == 5*time.Minute }},
	{"compact-hash-check-time", "2m", nil},
	{"compaction-batch-limit", "100", func(c *Config) bool { return c.CompactionBatchLimit == 100 }},
	{"peer-skip-client-san-verification", "false", nil},
	{"watch-progress-notify-interval", "200ms", func(c *Config) bool { return c.WatchProgressNotifyInterval == 200*time.Millisecond }},
	{"warning-apply-duration", "1s", nil},
	{"bootstrap-defrag-threshold-megabytes", "10", func(c *Config) bool { return c.BootstrapDefragThresholdMB == 10 }},
	{"max-learners", "2", func(c *Config) bool { return c.MaxLearners == 2 }},
	{"compaction-sleep-interval", "20ms", func(c *Config) bool { return c.CompactionSleepInterval == 20*time.Millisecond }},
	{"downgrade-check-time", "10s", nil},
	{"snapshot-catchup-entries", "100", func(c *Config) bool { return c.SnapshotCatchUpEntries == 100 }},
	// Unsafe.
	{"force-new-cluster", "true", func(c *Config) bool { return c.ForceNewCluster }},
	{"unsafe-no-fsync", "true", nil},
}

// TestEtcdV373FlagsAccepted: every flag of etcd v3.7.3 parses, from the
// command line and from ETCD_<FLAG>; one Cadre acts on has its effect,
// the others give exactly one warning naming the flag.
func TestEtcdV373FlagsAccepted(t *testing.T) {
	for _, f := range etcdV373Flags {
		for _, via := range []string{"flag", "env"} {
			t.Run(f.name+"/"+via, func(t *testing.T) {
				var args, env []string
				if via == "flag" {
					args = []string{"--" + f.name + "=" + f.value}
				} else {
					env = []string{EnvKey(EnvPrefixEtcd, f.name) + "=" + f.value}
					if f.value == "" {
						t.Skip("an empty variable counts as unset")
					}
				}
				c, warns, err := Parse(args, env)
				if err != nil {
					t.Fatalf("Parse(%q, %q): %v", args, env, err)
				}
				naming := 0
				for _, w := range warns {
					if strings.Contains(w, "--"+f.name+"=") || strings.Contains(w, "--"+f.name+" ") {
						naming++
					}
				}
				if f.check != nil {
					if !f.check(c) {
						t.Errorf("--%s=%s had no effect on the config", f.name, f.value)
					}
					if naming != 0 {
						t.Errorf("--%s acts but a warning says it does not: %q", f.name, warns)
					}
					return
				}
				if naming != 1 {
					t.Fatalf("warnings %q: want one naming --%s", warns, f.name)
				}
				if !strings.Contains(strings.Join(warns, "\n"), "accepted for etcd compatibility, has no effect") {
					t.Errorf("warning %q does not say the flag has no effect", warns)
				}
			})
		}
	}
}

// TestEtcdFlagTableComplete: the table above covers every flag Cadre
// accepts for etcd compatibility, so a compat flag added later is tested.
func TestEtcdFlagTableComplete(t *testing.T) {
	inTable := map[string]bool{}
	for _, f := range etcdV373Flags {
		inTable[f.name] = true
	}
	for _, f := range compatFlags {
		if !inTable[f.name] && !strings.HasPrefix(f.name, "experimental-") {
			t.Errorf("compat flag --%s is not in etcdV373Flags", f.name)
		}
	}
	if len(etcdV373Flags) != 113 {
		t.Errorf("%d flags in the table; etcd v3.7.3 has 115 (113 here plus --config-file and --version, tested on their own)", len(etcdV373Flags))
	}
}

// TestCompatSameValueQuiet: a compat flag set to what Cadre always does
// is not worth a warning.
func TestCompatSameValueQuiet(t *testing.T) {
	_, warns := mustParse(t, []string{"--pre-vote=true", "--unsafe-no-fsync=false", "--log-format=json", "--cors=*", "--discovery-fallback=exit"}, nil)
	if len(warns) != 0 {
		t.Errorf("warnings %q, want none", warns)
	}
}

func TestCompatValuesParsedAsEtcd(t *testing.T) {
	for _, args := range [][]string{
		{"--max-wals=many"}, {"--raft-read-timeout=5"}, {"--memory-mlock=maybe"}, {"--compaction-batch-limit=x"},
	} {
		if _, _, err := Parse(args, nil); err == nil || !strings.Contains(err.Error(), strings.SplitN(args[0], "=", 2)[0][2:]) {
			t.Errorf("Parse(%q) = %v, want an error naming the flag", args, err)
		}
	}
}

func TestV2DiscoveryRefused(t *testing.T) {
	for _, args := range [][]string{{"--discovery=https://discovery.etcd.io/abc"}, {"--discovery-fallback=proxy"}} {
		_, _, err := Parse(args, nil)
		if err == nil || !strings.Contains(err.Error(), strings.SplitN(args[0], "=", 2)[0][2:]) {
			t.Errorf("Parse(%q) = %v, want a refusal naming the flag", args, err)
		}
	}
}

// TestEtcdIgnoredNames: etcd v3.7.3 still takes its pre-v3 names (with
// or without a value) and ignores them; so does Cadre, with a warning.
func TestEtcdIgnoredNames(t *testing.T) {
	_, warns := mustParse(t, []string{"--v", "--cluster-active-size=3", "--peer-heartbeat-interval=100"}, nil)
	joined := strings.Join(warns, "\n")
	for _, n := range []string{"--v ", "--cluster-active-size ", "--peer-heartbeat-interval "} {
		if !strings.Contains(joined, n) {
			t.Errorf("no warning naming %s in %q", n, warns)
		}
	}
}

// TestExperimentalAliases: etcd v3.5's names set the new flag, warn, and
// may not be combined with the new name.
func TestExperimentalAliases(t *testing.T) {
	c, warns := mustParse(t, []string{"--experimental-watch-progress-notify-interval=3s", "--experimental-corrupt-check-time=2m"}, nil)
	if c.WatchProgressNotifyInterval != 3*time.Second || c.CorruptCheckTime != 2*time.Minute {
		t.Errorf("aliases did not set the flags: %v %v", c.WatchProgressNotifyInterval, c.CorruptCheckTime)
	}
	joined := strings.Join(warns, "\n")
	for _, want := range []string{"--experimental-watch-progress-notify-interval is deprecated", "use --watch-progress-notify-interval", "--experimental-corrupt-check-time is deprecated"} {
		if !strings.Contains(joined, want) {
			t.Errorf("warnings %q lack %q", warns, want)
		}
	}
	// An alias of a flag Cadre does not act on: deprecated and no effect.
	_, warns = mustParse(t, []string{"--experimental-compact-hash-check-time=2m"}, nil)
	if joined := strings.Join(warns, "\n"); !strings.Contains(joined, "--experimental-compact-hash-check-time=2m is accepted for etcd compatibility, has no effect") {
		t.Errorf("warnings %q", warns)
	}
	c, _ = mustParse(t, []string{"--experimental-compaction-batch-limit=10", "--experimental-compaction-sleep-interval=5ms"}, nil)
	if c.CompactionBatchLimit != 10 || c.CompactionSleepInterval != 5*time.Millisecond {
		t.Errorf("compaction aliases did not set the flags: %d %v", c.CompactionBatchLimit, c.CompactionSleepInterval)
	}
	// From the environment too.
	c, _ = mustParse(t, nil, []string{"ETCD_EXPERIMENTAL_WATCH_PROGRESS_NOTIFY_INTERVAL=4s"})
	if c.WatchProgressNotifyInterval != 4*time.Second {
		t.Errorf("env alias: %v", c.WatchProgressNotifyInterval)
	}
	_, _, err := Parse([]string{"--experimental-watch-progress-notify-interval=3s", "--watch-progress-notify-interval=4s"}, nil)
	if err == nil || !strings.Contains(err.Error(), "--experimental-watch-progress-notify-interval and --watch-progress-notify-interval are both set") {
		t.Errorf("old and new name together: %v", err)
	}
}

func TestWatchProgressNotifyIntervalDefault(t *testing.T) {
	c, _ := mustParse(t, nil, nil)
	if c.WatchProgressNotifyInterval != 10*time.Minute {
		t.Errorf("default %v, want etcd's 10m", c.WatchProgressNotifyInterval)
	}
	c, _ = mustParse(t, []string{"--watch-progress-notify-interval=-1s"}, nil)
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "--watch-progress-notify-interval") {
		t.Errorf("negative interval: %v", err)
	}
}
