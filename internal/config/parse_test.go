package config

import (
	"errors"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"
)

func mustParse(t *testing.T, args, env []string) (*Config, []string) {
	t.Helper()
	c, warns, err := Parse(args, env)
	if err != nil {
		t.Fatalf("Parse(%q, %q): %v", args, env, err)
	}
	return c, warns
}

func TestNoFlagsIsDefaultAndValid(t *testing.T) {
	c, warns := mustParse(t, nil, nil)
	if len(warns) != 0 {
		t.Errorf("warnings = %q, want none", warns)
	}
	if !reflect.DeepEqual(c, Default()) {
		t.Errorf("Parse(nil) = %+v\nwant Default() = %+v", c, Default())
	}
	if err := c.Validate(); err != nil {
		t.Fatalf("default config invalid: %v", err)
	}
	if err := Default().Validate(); err != nil {
		t.Fatalf("Default() invalid: %v", err)
	}
	checks := map[string][2]any{
		"Name":                {c.Name, "default"},
		"DataDir":             {c.DataDir, "default.cadre"},
		"ListenClientURLs":    {joinURLs(c.ListenClientURLs), "http://127.0.0.1:2379"},
		"AdvertiseClientURLs": {joinURLs(c.AdvertiseClientURLs), "http://127.0.0.1:2379"},
		"ListenPeerURLs":      {joinURLs(c.ListenPeerURLs), "http://127.0.0.1:2380"},
		"AdvertisePeerURLs":   {joinURLs(c.InitialAdvertisePeerURLs), "http://127.0.0.1:2380"},
		"InitialClusterRaw":   {c.InitialClusterRaw, "default=http://127.0.0.1:2380"},
		"InitialClusterState": {c.InitialClusterState, "new"},
		"InitialClusterToken": {c.InitialClusterToken, "etcd-cluster"},
		"Heartbeat":           {c.HeartbeatInterval, 100 * time.Millisecond},
		"Election":            {c.ElectionTimeout, time.Second},
		"SnapshotCount":       {c.SnapshotCount, uint64(10000)},
		"CatchUp":             {c.SnapshotCatchUpEntries, uint64(5000)},
		"MaxRequestBytes":     {c.MaxRequestBytes, uint(1572864)},
		"MaxTxnOps":           {c.MaxTxnOps, uint(128)},
		"StrictReconfig":      {c.StrictReconfigCheck, true},
		"MaxLearners":         {c.MaxLearners, 1},
		"Quota":               {c.QuotaBackendBytes, int64(0)},
		"LogLevel":            {c.LogLevel, "info"},
		"Metrics":             {len(c.ListenMetricsURLs), 0},
	}
	for name, v := range checks {
		if v[0] != v[1] {
			t.Errorf("%s = %v, want %v", name, v[0], v[1])
		}
	}
	if got := c.InitialClusterStrings(); !reflect.DeepEqual(got, map[string][]string{"default": {"http://127.0.0.1:2380"}}) {
		t.Errorf("InitialClusterStrings = %v", got)
	}
}

func TestNameOnlyDerivesDataDirAndCluster(t *testing.T) {
	c, _ := mustParse(t, []string{"--name", "infra1"}, nil)
	if c.DataDir != "infra1.cadre" {
		t.Errorf("DataDir = %q, want infra1.cadre", c.DataDir)
	}
	if c.InitialClusterRaw != "infra1=http://127.0.0.1:2380" {
		t.Errorf("InitialClusterRaw = %q", c.InitialClusterRaw)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	// The default cluster follows the advertised peer URLs, and an
	// explicit --data-dir is kept.
	c, _ = mustParse(t, []string{"--name=a", "--data-dir=/tmp/x", "--initial-advertise-peer-urls=http://10.0.0.1:2380,http://10.0.0.2:2380", "--listen-peer-urls=http://0.0.0.0:2380"}, nil)
	if c.DataDir != "/tmp/x" || c.InitialClusterRaw != "a=http://10.0.0.1:2380,a=http://10.0.0.2:2380" {
		t.Errorf("DataDir=%q InitialClusterRaw=%q", c.DataDir, c.InitialClusterRaw)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestFlagSyntaxes(t *testing.T) {
	for _, args := range [][]string{
		{"--name", "n1"}, {"--name=n1"}, {"-name", "n1"}, {"-name=n1"},
	} {
		c, _ := mustParse(t, args, nil)
		if c.Name != "n1" {
			t.Errorf("%q: Name = %q", args, c.Name)
		}
	}
	c, _ := mustParse(t, []string{"--heartbeat-interval", "250", "--election-timeout=2500", "--strict-reconfig-check=false",
		"--enable-pprof", "--snapshot-count=7", "--experimental-snapshot-catchup-entries=9", "--experimental-max-learners=3",
		"--quota-backend-bytes=8589934592", "--max-request-bytes=10", "--max-txn-ops=5", "--log-level=debug",
		"--listen-client-urls=http://127.0.0.1:2379, http://[::1]:2379", "--listen-metrics-urls=http://127.0.0.1:2381",
		"--log-outputs=stderr,stdout", "--auto-compaction-mode=revision", "--auto-compaction-retention=1000", "--force-new-cluster"}, nil)
	if c.HeartbeatInterval != 250*time.Millisecond || c.ElectionTimeout != 2500*time.Millisecond {
		t.Errorf("heartbeat %v election %v", c.HeartbeatInterval, c.ElectionTimeout)
	}
	if c.StrictReconfigCheck || !c.EnablePprof || c.SnapshotCount != 7 || c.SnapshotCatchUpEntries != 9 || c.MaxLearners != 3 ||
		c.QuotaBackendBytes != 8<<30 || c.MaxRequestBytes != 10 || c.MaxTxnOps != 5 || c.LogLevel != "debug" || !c.ForceNewCluster ||
		c.AutoCompactionMode != "revision" || c.AutoCompactionRetention != "1000" {
		t.Errorf("fields not set: %+v", c)
	}
	if got := joinURLs(c.ListenClientURLs); got != "http://127.0.0.1:2379,http://[::1]:2379" {
		t.Errorf("ListenClientURLs = %s", got)
	}
	if got := joinURLs(c.ListenMetricsURLs); got != "http://127.0.0.1:2381" {
		t.Errorf("ListenMetricsURLs = %s", got)
	}
	if !reflect.DeepEqual(c.LogOutputs, []string{"stderr", "stdout"}) {
		t.Errorf("LogOutputs = %q", c.LogOutputs)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
}

// A typical three-member etcd command line from etcd's clustering guide.
func TestEtcdClusteringGuideCommandLine(t *testing.T) {
	c, _ := mustParse(t, strings.Fields(`--name infra1 --initial-advertise-peer-urls http://10.0.1.11:2380
		--listen-peer-urls http://10.0.1.11:2380 --listen-client-urls http://10.0.1.11:2379,http://127.0.0.1:2379
		--advertise-client-urls http://10.0.1.11:2379 --initial-cluster-token etcd-cluster-1
		--initial-cluster infra0=http://10.0.1.10:2380,infra1=http://10.0.1.11:2380,infra2=http://10.0.1.12:2380
		--initial-cluster-state new`), nil)
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	want := map[string][]string{"infra0": {"http://10.0.1.10:2380"}, "infra1": {"http://10.0.1.11:2380"}, "infra2": {"http://10.0.1.12:2380"}}
	if got := c.InitialClusterStrings(); !reflect.DeepEqual(got, want) {
		t.Errorf("InitialCluster = %v, want %v", got, want)
	}
	if c.InitialClusterToken != "etcd-cluster-1" || c.DataDir != "infra1.cadre" {
		t.Errorf("token %q data dir %q", c.InitialClusterToken, c.DataDir)
	}
}

func TestPrecedence(t *testing.T) {
	tests := []struct {
		name string
		args []string
		env  []string
		want string
	}{
		{"default", nil, nil, "default"},
		{"etcd env", nil, []string{"ETCD_NAME=e"}, "e"},
		{"cadre env", nil, []string{"CADRE_NAME=c"}, "c"},
		{"cadre beats etcd", nil, []string{"ETCD_NAME=e", "CADRE_NAME=c"}, "c"},
		{"flag beats all", []string{"--name=f"}, []string{"ETCD_NAME=e", "CADRE_NAME=c"}, "f"},
		{"empty env is unset", nil, []string{"CADRE_NAME=", "ETCD_NAME=e"}, "e"},
		{"first duplicate wins", nil, []string{"ETCD_NAME=one", "ETCD_NAME=two"}, "one"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, _ := mustParse(t, tt.args, tt.env)
			if c.Name != tt.want {
				t.Errorf("Name = %q, want %q", c.Name, tt.want)
			}
			if c.DataDir != tt.want+".cadre" {
				t.Errorf("DataDir = %q, want %s.cadre", c.DataDir, tt.want)
			}
		})
	}
	// Typed values through the environment.
	c, _ := mustParse(t, []string{"--snapshot-count=3"}, []string{"ETCD_SNAPSHOT_COUNT=1", "CADRE_HEARTBEAT_INTERVAL=50",
		"ETCD_HEARTBEAT_INTERVAL=70", "ETCD_ELECTION_TIMEOUT=500", "ETCD_STRICT_RECONFIG_CHECK=false", "ETCD_LISTEN_CLIENT_URLS=http://0.0.0.0:12379"})
	if c.SnapshotCount != 3 || c.HeartbeatInterval != 50*time.Millisecond || c.ElectionTimeout != 500*time.Millisecond ||
		c.StrictReconfigCheck || joinURLs(c.ListenClientURLs) != "http://0.0.0.0:12379" {
		t.Errorf("env values not applied: %+v", c)
	}
}

func TestEnvWarnings(t *testing.T) {
	tests := []struct {
		name string
		args []string
		env  []string
		want []string
	}{
		{"unknown etcd", nil, []string{"ETCD_FOO=bar"},
			[]string{"unrecognized environment variable ETCD_FOO=bar (no flag --foo); ignoring it"}},
		{"unknown cadre", nil, []string{"CADRE_MAX_FOO=1"},
			[]string{"unrecognized environment variable CADRE_MAX_FOO=1 (no flag --max-foo); ignoring it"}},
		{"lower-case key is not read", nil, []string{"ETCD_name=x"},
			[]string{"unrecognized environment variable ETCD_name=x (no flag --name); ignoring it"}},
		{"unsupported arch", nil, []string{"ETCD_UNSUPPORTED_ARCH=arm"},
			[]string{"unrecognized environment variable ETCD_UNSUPPORTED_ARCH=arm (no flag --unsupported-arch); ignoring it"}},
		{"etcdctl ignored", nil, []string{"ETCDCTL_API=3", "ETCDCTL_ENDPOINTS=http://x:2379", "PATH=/bin", "CADRE=1"}, nil},
		{"shadowed by flag", []string{"--name=f"}, []string{"ETCD_NAME=e", "CADRE_NAME=c"}, []string{
			`conflicting environment variable "CADRE_NAME" is shadowed by corresponding command-line flag (either unset environment variable or disable flag)`,
			`conflicting environment variable "ETCD_NAME" is shadowed by corresponding command-line flag (either unset environment variable or disable flag)`,
		}},
		{"etcd shadowed by cadre", nil, []string{"ETCD_NAME=e", "CADRE_NAME=c"},
			[]string{`environment variable "ETCD_NAME" is shadowed by "CADRE_NAME" (CADRE_ takes precedence over ETCD_); unset one of them`}},
		{"version is command-line only", nil, []string{"ETCD_VERSION=3.5.0"},
			[]string{"environment variable ETCD_VERSION=3.5.0 is ignored: --version can only be given on the command line"}},
		{"enable-v2", []string{"--enable-v2"}, nil, []string{"--enable-v2 is ignored: cadre serves only the v3 API"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, warns := mustParse(t, tt.args, tt.env)
			if !reflect.DeepEqual(warns, tt.want) {
				t.Errorf("warnings =\n%q\nwant\n%q", warns, tt.want)
			}
		})
	}
}

// The lines `etcdctl member add infra4 --peer-urls=http://localhost:2380`
// prints, exported by a shell (which drops the quotes).
func TestEtcdctlMemberAddLines(t *testing.T) {
	env := []string{
		"ETCD_NAME=infra4",
		"ETCD_INITIAL_CLUSTER=infra4=http://localhost:2380,infra2=http://127.0.0.1:22380,infra3=http://127.0.0.1:32380",
		"ETCD_INITIAL_ADVERTISE_PEER_URLS=http://localhost:2380",
		"ETCD_INITIAL_CLUSTER_STATE=existing",
		"ETCDCTL_API=3",
	}
	c, warns := mustParse(t, []string{"--listen-peer-urls=http://127.0.0.1:2380", "--listen-client-urls=http://127.0.0.1:2379"}, env)
	if len(warns) != 0 {
		t.Errorf("warnings = %q", warns)
	}
	if c.Name != "infra4" || c.InitialClusterState != "existing" || c.DataDir != "infra4.cadre" {
		t.Errorf("name %q state %q data dir %q", c.Name, c.InitialClusterState, c.DataDir)
	}
	if got := joinURLs(c.InitialAdvertisePeerURLs); got != "http://localhost:2380" {
		t.Errorf("advertise = %s", got)
	}
	want := map[string][]string{
		"infra4": {"http://localhost:2380"},
		"infra2": {"http://127.0.0.1:22380"},
		"infra3": {"http://127.0.0.1:32380"},
	}
	if got := c.InitialClusterStrings(); !reflect.DeepEqual(got, want) {
		t.Errorf("InitialCluster = %v, want %v", got, want)
	}
	if c.InitialClusterRaw != strings.TrimPrefix(env[1], "ETCD_INITIAL_CLUSTER=") {
		t.Errorf("InitialClusterRaw = %q", c.InitialClusterRaw)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
}

// etcdctl prints a member that has not started yet with an empty name.
func TestUnstartedMemberHasEmptyName(t *testing.T) {
	env := []string{
		"ETCD_NAME=infra4",
		"ETCD_INITIAL_CLUSTER=infra4=http://127.0.0.1:42380,=http://127.0.0.1:2380,infra3=http://127.0.0.1:32380",
		"ETCD_INITIAL_ADVERTISE_PEER_URLS=http://127.0.0.1:42380",
		"ETCD_INITIAL_CLUSTER_STATE=existing",
	}
	c, _ := mustParse(t, nil, env)
	if got := URLStrings(c.InitialCluster[""]); !reflect.DeepEqual(got, []string{"http://127.0.0.1:2380"}) {
		t.Errorf(`InitialCluster[""] = %q`, got)
	}
	if len(c.InitialCluster) != 3 {
		t.Errorf("InitialCluster = %v", c.InitialCluster)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name string
		args []string
		env  []string
		is   error
		want string
	}{
		{"help", []string{"--help"}, nil, ErrHelp, ""},
		{"h", []string{"-h"}, nil, ErrHelp, ""},
		{"help after flags", []string{"--name=x", "-help"}, nil, ErrHelp, ""},
		{"version", []string{"--version"}, nil, ErrVersion, ""},
		{"unknown flag", []string{"--foo=1"}, nil, ErrUsage, "flag provided but not defined: -foo; run 'cadre --help' to list the flags"},
		{"bad uint", []string{"--snapshot-count=abc"}, nil, ErrUsage, `invalid value "abc" for flag -snapshot-count`},
		{"bad ms", []string{"--heartbeat-interval=1s"}, nil, ErrUsage, "expected an integer number of milliseconds, like 100"},
		{"stray arg", []string{"--name=a", "extra"}, nil, ErrUsage, `unexpected argument "extra": cadre takes only flags`},
		{"bad env value", nil, []string{"ETCD_SNAPSHOT_COUNT=many"}, ErrUsage,
			`invalid value "many" in environment variable ETCD_SNAPSHOT_COUNT for --snapshot-count`},
		{"bad env bool", nil, []string{"CADRE_ENABLE_PPROF=yes please"}, ErrUsage, `environment variable CADRE_ENABLE_PPROF for --enable-pprof`},
		{"url without scheme", []string{"--listen-peer-urls=127.0.0.1:2380"}, nil, ErrInvalid,
			`invalid --listen-peer-urls "127.0.0.1:2380": URL needs a scheme and host:port, like http://127.0.0.1:2380`},
		{"cluster entry without =", []string{"--initial-cluster=http://127.0.0.1:2380"}, nil, ErrInvalid,
			`invalid --initial-cluster entry "http://127.0.0.1:2380": expected name=peerURL, like infra1=http://127.0.0.1:2380`},
		{"cluster entry without URL", []string{"--initial-cluster=default="}, nil, ErrInvalid,
			`invalid --initial-cluster entry "default=": the peer URL is empty; expected name=peerURL, like default=http://127.0.0.1:2380`},
		{"cluster entry bad URL", []string{"--initial-cluster=default=127.0.0.1:2380"}, nil, ErrInvalid,
			`invalid --initial-cluster entry "default=127.0.0.1:2380": URL needs a scheme and host:port, like default=http://127.0.0.1:2380`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := Parse(tt.args, tt.env)
			if !errors.Is(err, tt.is) {
				t.Fatalf("err = %v, want errors.Is %v", err, tt.is)
			}
			if !strings.Contains(err.Error(), tt.want) || strings.Contains(err.Error(), "\n") {
				t.Errorf("err = %q, want one line containing %q", err, tt.want)
			}
		})
	}
}

func TestUsage(t *testing.T) {
	u := Usage()
	for _, want := range []string{"--initial-cluster string", "--heartbeat-interval milliseconds", "(default \"100\")",
		"--listen-client-urls URLs", "ETCD_INITIAL_CLUSTER", "--help", "--snapshot-count uint"} {
		if !strings.Contains(u, want) {
			t.Errorf("Usage() lacks %q:\n%s", want, u)
		}
	}
}

// Config values are independent: parsing twice shares nothing.
func TestParseSharesNoState(t *testing.T) {
	a, _ := mustParse(t, []string{"--listen-client-urls=http://127.0.0.1:1"}, nil)
	b, _ := mustParse(t, nil, nil)
	a.InitialCluster["default"][0] = url.URL{Scheme: "http", Host: "x:1"}
	if joinURLs(b.ListenClientURLs) != DefaultListenClientURL || b.InitialCluster["default"][0].Host != "127.0.0.1:2380" {
		t.Errorf("state leaked between Parse calls: %+v", b)
	}
}
