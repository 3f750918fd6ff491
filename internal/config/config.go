// Package config holds the cadre server's configuration: the etcd-compatible
// flags, their CADRE_* / ETCD_* environment variables, the defaults and the
// validation. Everything here is pure: no disk, no network, no globals, so
// tests and in-process clusters can build as many configs as they like.
//
// Precedence for every setting: command-line flag > CADRE_<FLAG> >
// ETCD_<FLAG> > default. ETCD_* is honoured so that the lines printed by
// `etcdctl member add` and existing etcd deployment files work unchanged.
package config

import (
	"errors"
	"math"
	"net/url"
	"strings"
	"time"
)

// Sentinel errors. Parse and Validate return errors that wrap one of these;
// their text is the user-facing one-line message.
var (
	// ErrHelp is returned by Parse for -h/--help; print Usage().
	ErrHelp = errors.New("help requested")
	// ErrVersion is returned by Parse for --version; print the version.
	ErrVersion = errors.New("version requested")
	// ErrUsage wraps command-line and environment errors (unknown flag,
	// unparsable value, stray argument).
	ErrUsage = errors.New("invalid command line")
	// ErrInvalid wraps every Validate error.
	ErrInvalid = errors.New("invalid configuration")
)

// Defaults, as in etcd unless noted.
const (
	DefaultName                    = "default"
	DefaultListenClientURL         = "http://127.0.0.1:2379"
	DefaultListenPeerURL           = "http://127.0.0.1:2380"
	DefaultInitialClusterState     = "new"
	DefaultInitialClusterToken     = "etcd-cluster"
	DefaultHeartbeatInterval       = 100 * time.Millisecond
	DefaultElectionTimeout         = 1000 * time.Millisecond
	DefaultSnapshotCount           = 10000
	DefaultSnapshotCatchUpEntries  = 5000
	DefaultMaxRequestBytes         = 1572864
	DefaultMaxTxnOps               = 128
	DefaultMaxLearners             = 1
	DefaultLogLevel                = "info"
	DefaultLogger                  = "zap"
	DefaultLogOutput               = "default"
	DefaultAutoCompactionMode      = "periodic"
	DefaultAutoCompactionRetention = "0"

	DefaultWatchProgressNotifyInterval = 10 * time.Minute
	DefaultGRPCKeepAliveMinTime        = 5 * time.Second
	DefaultGRPCKeepAliveInterval       = 2 * time.Hour
	DefaultGRPCKeepAliveTimeout        = 20 * time.Second
	DefaultMaxConcurrentStreams        = math.MaxUint32
	DefaultSelfSignedCertValidity      = 1

	// DataDirSuffix makes the default data dir "<name>.cadre" (etcd uses
	// "<name>.etcd"; a different suffix keeps the two from sharing a dir).
	DataDirSuffix = ".cadre"

	// maxElectionTimeout is etcd's upper bound for --election-timeout.
	maxElectionTimeout = 50 * time.Second
)

// Config is the complete server configuration.
type Config struct {
	Name    string
	DataDir string

	ListenClientURLs         []url.URL
	AdvertiseClientURLs      []url.URL
	ListenPeerURLs           []url.URL
	InitialAdvertisePeerURLs []url.URL
	ListenMetricsURLs        []url.URL // optional; empty = no separate metrics listener
	// ListenClientHTTPURLs (--listen-client-http-urls), when set, serve the
	// HTTP endpoints (health, metrics, version, gateway, pprof) alone, and
	// the client URLs then serve only gRPC, as in etcd.
	ListenClientHTTPURLs []url.URL

	// ConfigFile is the --config-file the configuration came from ("" when
	// it came from flags and the environment); errors then name the file.
	ConfigFile string

	// InitialCluster is --initial-cluster parsed: member name -> peer URLs
	// (a name listed several times has several URLs, in the given order).
	// A member that has not started yet appears with an empty name in the
	// lines `etcdctl member add` prints ("=http://..."); it is stored under
	// the key "". An empty name is valid only for OTHER members and only
	// with --initial-cluster-state=existing.
	InitialCluster map[string][]url.URL
	// InitialClusterRaw is --initial-cluster as given (or as computed from
	// --name and --initial-advertise-peer-urls); used in messages.
	InitialClusterRaw   string
	InitialClusterState string // "new" | "existing"
	InitialClusterToken string

	HeartbeatInterval time.Duration // --heartbeat-interval, integer ms
	ElectionTimeout   time.Duration // --election-timeout, integer ms

	SnapshotCount          uint64
	SnapshotCatchUpEntries uint64 // entries kept after a snapshot for slow followers
	MaxRequestBytes        uint
	MaxTxnOps              uint
	StrictReconfigCheck    bool
	MaxLearners            int
	// MembershipHistory is how many applied membership changes the audit
	// trail keeps (carried in each change, so every member keeps the same).
	MembershipHistory int
	// BootstrapDefragThresholdMB: defragment at start when at least this
	// many MB would be freed (etcd's flag; 0 = never).
	BootstrapDefragThresholdMB uint
	QuotaBackendBytes          int64 // 0 = default (2 GiB)
	EnablePprof                bool
	DisableDashboard           bool // --disable-dashboard: no /ui/ page on the client URLs

	// InitialCorruptCheck compares this member's key history with its
	// peers' before it serves (etcd: --experimental-initial-corrupt-check,
	// off by default there; on here, because serving damaged data is worse
	// than a refused start). CorruptCheckTime > 0 makes the leader compare
	// every member's at that period and raise CORRUPT on a mismatch.
	InitialCorruptCheck bool
	CorruptCheckTime    time.Duration

	// WatchProgressNotifyInterval is how often a watcher created with
	// progress_notify that had no events gets an empty response carrying
	// the current revision (--watch-progress-notify-interval).
	WatchProgressNotifyInterval time.Duration

	// gRPC server settings of the client port (etcd's flags and defaults).
	GRPCKeepAliveMinTime  time.Duration
	GRPCKeepAliveInterval time.Duration
	GRPCKeepAliveTimeout  time.Duration
	MaxConcurrentStreams  uint32

	// BackendBatchInterval and BackendBatchLimit bound how long and how
	// many applied writes share one backend commit (0 = the defaults,
	// 100ms and 10,000, as in etcd).
	BackendBatchInterval time.Duration
	BackendBatchLimit    int

	// CompactionBatchLimit and CompactionSleepInterval pace the deletion
	// of compacted revisions, which runs in the background after a
	// compaction: at most this many revisions looked at per step, this
	// pause between steps (0 = etcd's defaults, 1000 and 10ms).
	CompactionBatchLimit    int
	CompactionSleepInterval time.Duration

	// SelfSignedCertValidity is the lifetime in years of the certificates
	// --auto-tls / --peer-auto-tls generate.
	SelfSignedCertValidity uint

	LogLevel   string   // debug|info|warn|error
	Logger     string   // only "zap" (accepted for etcd compatibility)
	LogOutputs []string // stderr|stdout|default

	AutoCompactionMode      string // periodic|revision
	AutoCompactionRetention string
	ForceNewCluster         bool
	EnableV2                bool // accepted for etcd command lines; ignored with a warning

	// InitialClusterSet records whether --initial-cluster was given (it
	// cannot be combined with discovery, which builds it).
	InitialClusterSet bool

	Discovery Discovery
	// Join is how this member joins a running cluster by itself (--join).
	Join Join
	TLS  TLS
	Auth Auth
}

// Discovery is how a new cluster's members find each other instead of
// --initial-cluster: v3 discovery through a running etcd-API cluster
// (Token + Endpoints) or DNS SRV records (SRV). Only for bootstrapping.
type Discovery struct {
	Token                 string
	Endpoints             []string
	DialTimeout           time.Duration
	RequestTimeout        time.Duration
	KeepAliveTime         time.Duration
	KeepAliveTimeout      time.Duration
	InsecureTransport     bool
	InsecureSkipTLSVerify bool
	CertFile, KeyFile     string
	CACertFile            string
	User, Password        string

	SRV     string // DNS domain
	SRVName string // suffix of the SRV service name
	// SRVResolver is a DNS server host:port for the SRV lookups (Cadre
	// only; default: the system resolver).
	SRVResolver string
}

// Enabled reports whether any discovery method is configured.
func (d *Discovery) Enabled() bool { return d.Token != "" || d.SRV != "" }

// SetInitialCluster replaces --initial-cluster with text (name=URL,...),
// as discovery computes it.
func (c *Config) SetInitialCluster(text string) error {
	m, err := parseInitialCluster(text)
	if err != nil {
		return err
	}
	c.InitialCluster, c.InitialClusterRaw = m, text
	return nil
}

// Default returns the configuration of `cadre` run with no flags: a working
// single-member cluster named "default" on 127.0.0.1:2379/2380.
func Default() *Config {
	c := &Config{
		Name:                        DefaultName,
		DataDir:                     DefaultName + DataDirSuffix,
		ListenClientURLs:            []url.URL{mustURL(DefaultListenClientURL)},
		AdvertiseClientURLs:         []url.URL{mustURL(DefaultListenClientURL)},
		ListenPeerURLs:              []url.URL{mustURL(DefaultListenPeerURL)},
		InitialAdvertisePeerURLs:    []url.URL{mustURL(DefaultListenPeerURL)},
		InitialClusterState:         DefaultInitialClusterState,
		InitialClusterToken:         DefaultInitialClusterToken,
		HeartbeatInterval:           DefaultHeartbeatInterval,
		ElectionTimeout:             DefaultElectionTimeout,
		SnapshotCount:               DefaultSnapshotCount,
		SnapshotCatchUpEntries:      DefaultSnapshotCatchUpEntries,
		MaxRequestBytes:             DefaultMaxRequestBytes,
		MaxTxnOps:                   DefaultMaxTxnOps,
		StrictReconfigCheck:         true,
		InitialCorruptCheck:         true,
		MaxLearners:                 DefaultMaxLearners,
		MembershipHistory:           1000,
		LogLevel:                    DefaultLogLevel,
		Logger:                      DefaultLogger,
		LogOutputs:                  []string{DefaultLogOutput},
		AutoCompactionMode:          DefaultAutoCompactionMode,
		AutoCompactionRetention:     DefaultAutoCompactionRetention,
		WatchProgressNotifyInterval: DefaultWatchProgressNotifyInterval,
		GRPCKeepAliveMinTime:        DefaultGRPCKeepAliveMinTime,
		GRPCKeepAliveInterval:       DefaultGRPCKeepAliveInterval,
		GRPCKeepAliveTimeout:        DefaultGRPCKeepAliveTimeout,
		MaxConcurrentStreams:        DefaultMaxConcurrentStreams,
		SelfSignedCertValidity:      DefaultSelfSignedCertValidity,
		TLS:                         TLS{MinVersion: "TLS1.2", HandshakeTimeout: 10 * time.Second},
		Auth:                        Auth{Token: "simple", TokenTTL: 300, BcryptCost: 10},
		Discovery: Discovery{
			DialTimeout:       2 * time.Second,
			RequestTimeout:    5 * time.Second,
			KeepAliveTime:     2 * time.Second,
			KeepAliveTimeout:  6 * time.Second,
			InsecureTransport: true,
		},
	}
	c.InitialClusterRaw = initialClusterFor(c.Name, c.InitialAdvertisePeerURLs)
	c.InitialCluster = map[string][]url.URL{c.Name: cloneURLs(c.InitialAdvertisePeerURLs)}
	return c
}

// InitialClusterStrings returns InitialCluster with URLs as strings, the
// form membership.Bootstrap takes. URL strings are kept exactly as parsed
// (not lower-cased or resolved) because member IDs hash them.
func (c *Config) InitialClusterStrings() map[string][]string {
	m := make(map[string][]string, len(c.InitialCluster))
	for name, us := range c.InitialCluster {
		m[name] = URLStrings(us)
	}
	return m
}

// URLStrings renders URLs with url.URL.String.
func URLStrings(us []url.URL) []string {
	out := make([]string, len(us))
	for i := range us {
		out[i] = us[i].String()
	}
	return out
}

func joinURLs(us []url.URL) string { return strings.Join(URLStrings(us), ",") }

func cloneURLs(us []url.URL) []url.URL { return append([]url.URL(nil), us...) }

// initialClusterFor is the default --initial-cluster: this member alone.
func initialClusterFor(name string, peerURLs []url.URL) string {
	parts := make([]string, len(peerURLs))
	for i := range peerURLs {
		parts[i] = name + "=" + peerURLs[i].String()
	}
	return strings.Join(parts, ",")
}

func mustURL(s string) url.URL {
	u, err := url.Parse(s)
	if err != nil {
		panic("config: bad built-in URL " + s) // constants only; a bug if reached
	}
	return *u
}

// SetAdvertisePeerURLs replaces --initial-advertise-peer-urls (DNS SRV
// discovery adopts the records' spelling of this member's URLs).
func (c *Config) SetAdvertisePeerURLs(urls []string) error {
	if len(urls) == 0 {
		return nil
	}
	us, err := parseURLList("initial-advertise-peer-urls", strings.Join(urls, ","))
	if err != nil {
		return err
	}
	c.InitialAdvertisePeerURLs = us
	return nil
}
