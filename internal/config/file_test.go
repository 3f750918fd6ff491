package config

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func writeFile(t *testing.T, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "etcd.conf.yml")
	if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// fullFile uses every section of etcd's configuration file, in the forms
// etcd.conf.yml.sample and etcd's own docs use.
const fullFile = `# etcd.conf.yml for infra1
name: 'infra1'
data-dir: /var/lib/etcd/infra1
wal-dir:
snapshot-count: 5000
heartbeat-interval: 150
election-timeout: 1500
quota-backend-bytes: 4294967296
listen-peer-urls: https://10.0.1.11:2380
listen-client-urls: https://10.0.1.11:2379,https://127.0.0.1:2379
listen-client-http-urls: https://10.0.1.11:2381
max-snapshots: 5
max-wals: 5
cors:
initial-advertise-peer-urls: https://10.0.1.11:2380
advertise-client-urls: https://10.0.1.11:2379
discovery:
initial-cluster: infra0=https://10.0.1.10:2380,infra1=https://10.0.1.11:2380,infra2=https://10.0.1.12:2380
initial-cluster-token: 'etcd-cluster-1'
initial-cluster-state: 'new'
strict-reconfig-check: false
enable-pprof: true
client-transport-security:
  cert-file: /etc/etcd/server.crt
  key-file: /etc/etcd/server.key
  client-cert-auth: true
  trusted-ca-file: /etc/etcd/ca.crt
  auto-tls: false
  allowed-hostname: [client.example.com]
peer-transport-security:
  cert-file: /etc/etcd/peer.crt
  key-file: /etc/etcd/peer.key
  client-cert-file: /etc/etcd/peer-client.crt
  client-key-file: /etc/etcd/peer-client.key
  client-cert-auth: true
  trusted-ca-file: /etc/etcd/peer-ca.crt
  auto-tls: false
  allowed-cn: [infra0, infra1, infra2]
  allowed-hostname:
self-signed-cert-validity: 2
log-level: debug
logger: zap
log-outputs: [stderr]
force-new-cluster: false
auto-compaction-mode: periodic
auto-compaction-retention: "1"
cipher-suites: [
  TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
  TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384
]
tls-min-version: 'TLS1.2'
tls-max-version: 'TLS1.3'
max-learners: 2
watch-progress-notify-interval: 600000000000
corrupt-check-time: 5m
grpc-keepalive-timeout: 30000000000
feature-gates: InitialCorruptCheck=false
`

func TestConfigFileFull(t *testing.T) {
	p := writeFile(t, fullFile)
	c, warns, err := Parse([]string{"--config-file", p}, nil)
	if err != nil {
		t.Fatal(err)
	}
	checks := map[string][2]any{
		"Name":             {c.Name, "infra1"},
		"DataDir":          {c.DataDir, "/var/lib/etcd/infra1"},
		"SnapshotCount":    {c.SnapshotCount, uint64(5000)},
		"Heartbeat":        {c.HeartbeatInterval, 150 * time.Millisecond},
		"Election":         {c.ElectionTimeout, 1500 * time.Millisecond},
		"Quota":            {c.QuotaBackendBytes, int64(4 << 30)},
		"ListenPeer":       {joinURLs(c.ListenPeerURLs), "https://10.0.1.11:2380"},
		"ListenClient":     {joinURLs(c.ListenClientURLs), "https://10.0.1.11:2379,https://127.0.0.1:2379"},
		"ListenClientHTTP": {joinURLs(c.ListenClientHTTPURLs), "https://10.0.1.11:2381"},
		"AdvertisePeer":    {joinURLs(c.InitialAdvertisePeerURLs), "https://10.0.1.11:2380"},
		"AdvertiseClient":  {joinURLs(c.AdvertiseClientURLs), "https://10.0.1.11:2379"},
		"InitialCluster":   {len(c.InitialCluster), 3},
		"ClusterSet":       {c.InitialClusterSet, true},
		"Token":            {c.InitialClusterToken, "etcd-cluster-1"},
		"State":            {c.InitialClusterState, "new"},
		"StrictReconfig":   {c.StrictReconfigCheck, false},
		"Pprof":            {c.EnablePprof, true},
		"CertFile":         {c.TLS.Client.CertFile, "/etc/etcd/server.crt"},
		"KeyFile":          {c.TLS.Client.KeyFile, "/etc/etcd/server.key"},
		"ClientCertAuth":   {c.TLS.Client.ClientCertAuth, true},
		"TrustedCA":        {c.TLS.Client.TrustedCAFile, "/etc/etcd/ca.crt"},
		"ClientHostnames":  {strings.Join(c.TLS.Client.AllowedHostnames, ","), "client.example.com"},
		"PeerCert":         {c.TLS.Peer.CertFile, "/etc/etcd/peer.crt"},
		"PeerClientCert":   {c.TLS.Peer.ClientCertFile, "/etc/etcd/peer-client.crt"},
		"PeerClientKey":    {c.TLS.Peer.ClientKeyFile, "/etc/etcd/peer-client.key"},
		"PeerCertAuth":     {c.TLS.Peer.ClientCertAuth, true},
		"PeerCA":           {c.TLS.Peer.TrustedCAFile, "/etc/etcd/peer-ca.crt"},
		"PeerCNs":          {strings.Join(c.TLS.Peer.AllowedCNs, ","), "infra0,infra1,infra2"},
		"Validity":         {c.SelfSignedCertValidity, uint(2)},
		"LogLevel":         {c.LogLevel, "debug"},
		"LogOutputs":       {strings.Join(c.LogOutputs, ","), "stderr"},
		"Retention":        {c.AutoCompactionRetention, "1"},
		"Suites":           {len(c.TLS.CipherSuites), 2},
		"MaxTLS":           {c.TLS.MaxVersion, "TLS1.3"},
		"MaxLearners":      {c.MaxLearners, 2},
		"Progress":         {c.WatchProgressNotifyInterval, 10 * time.Minute}, // integer nanoseconds, as etcd writes them
		"CorruptCheck":     {c.CorruptCheckTime, 5 * time.Minute},             // Cadre also takes the flag's form
		"KeepAliveTimeout": {c.GRPCKeepAliveTimeout, 30 * time.Second},
		"InitialCorrupt":   {c.InitialCorruptCheck, false},
		"ConfigFile":       {c.ConfigFile, p},
	}
	for name, v := range checks {
		if !reflect.DeepEqual(v[0], v[1]) {
			t.Errorf("%s = %v, want %v", name, v[0], v[1])
		}
	}
	// max-snapshots and max-wals are accepted, with no effect.
	if joined := strings.Join(warns, "\n"); !strings.Contains(joined, "--max-wals=5 is accepted for etcd compatibility, has no effect") {
		t.Errorf("warnings %q", warns)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
}

// sampleShaped has the keys and value forms of etcd's
// etcd.conf.yml.sample (v3.7): empty values, keys etcd no longer reads
// (the v2 proxy), a flow-style list.
const sampleShaped = `name: 'default'
data-dir:
wal-dir:
snapshot-count: 10000
heartbeat-interval: 100
election-timeout: 1000
quota-backend-bytes: 0
listen-peer-urls: http://localhost:2380
listen-client-urls: http://localhost:2379
max-snapshots: 5
max-wals: 5
cors:
initial-advertise-peer-urls: http://localhost:2380
advertise-client-urls: http://localhost:2379
discovery:
discovery-fallback: 'proxy'
discovery-proxy:
discovery-srv:
initial-cluster:
initial-cluster-token: 'etcd-cluster'
initial-cluster-state: 'new'
strict-reconfig-check: false
enable-pprof: true
proxy: 'off'
proxy-failure-wait: 5000
proxy-refresh-interval: 30000
proxy-dial-timeout: 1000
proxy-write-timeout: 5000
proxy-read-timeout: 0
client-transport-security:
  cert-file:
  key-file:
  client-cert-auth: false
  trusted-ca-file:
  auto-tls: false
peer-transport-security:
  cert-file:
  key-file:
  client-cert-auth: false
  trusted-ca-file:
  auto-tls: false
  allowed-cn:
  allowed-hostname:
self-signed-cert-validity: 1
log-level: debug
logger: zap
log-outputs: [stderr]
force-new-cluster: false
auto-compaction-mode: periodic
auto-compaction-retention: "1"
cipher-suites: [
  TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
  TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384
]
tls-min-version: 'TLS1.2'
tls-max-version: 'TLS1.3'
`

// TestEtcdSampleShapedFile: a file like etcd's own sample is accepted as
// is; the keys etcd no longer reads are named in warnings.
func TestEtcdSampleShapedFile(t *testing.T) {
	c, warns, err := Parse([]string{"--config-file", writeFile(t, sampleShaped)}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if c.Name != "default" || c.LogLevel != "debug" || c.StrictReconfigCheck || !c.EnablePprof || c.AutoCompactionRetention != "1" ||
		c.TLS.MaxVersion != "TLS1.3" || len(c.TLS.CipherSuites) != 2 || joinURLs(c.ListenClientURLs) != "http://localhost:2379" {
		t.Errorf("sample values not applied: %+v", c)
	}
	joined := strings.Join(warns, "\n")
	for _, want := range []string{`line 24: key "proxy" is ignored`, `line 16: key "discovery-fallback" is ignored`} {
		if !strings.Contains(joined, want) {
			t.Errorf("warnings lack %q:\n%s", want, joined)
		}
	}
}

// TestConfigFilePrecedence: etcd's rule, a config file replaces every
// other flag and environment variable; Cadre names what it ignores.
func TestConfigFilePrecedence(t *testing.T) {
	p := writeFile(t, "name: fromfile\n")
	other := writeFile(t, "name: other\n")
	env := []string{"ETCD_NAME=fromenv", "CADRE_SNAPSHOT_COUNT=7", "PATH=/bin"}
	c, warns, err := Parse([]string{"--name=fromflag", "--config-file=" + p, "--heartbeat-interval=300"}, env)
	if err != nil {
		t.Fatal(err)
	}
	if c.Name != "fromfile" || c.SnapshotCount != DefaultSnapshotCount || c.HeartbeatInterval != DefaultHeartbeatInterval {
		t.Errorf("flags or env leaked past the config file: name %q snapshot-count %d heartbeat %v", c.Name, c.SnapshotCount, c.HeartbeatInterval)
	}
	if c.DataDir != "fromfile.cadre" || c.InitialClusterRaw != "fromfile=http://127.0.0.1:2380" {
		t.Errorf("defaults that follow the name: data-dir %q initial-cluster %q", c.DataDir, c.InitialClusterRaw)
	}
	joined := strings.Join(warns, "\n")
	for _, want := range []string{"command-line flags --heartbeat-interval --name are ignored", "environment variables CADRE_SNAPSHOT_COUNT ETCD_NAME are ignored", p} {
		if !strings.Contains(joined, want) {
			t.Errorf("warnings lack %q:\n%s", want, joined)
		}
	}
	if strings.Contains(joined, "PATH") {
		t.Errorf("warnings name an unrelated variable:\n%s", joined)
	}

	for _, tc := range []struct {
		name string
		args []string
		env  []string
		want string
	}{
		{"ETCD_CONFIG_FILE", nil, []string{"ETCD_CONFIG_FILE=" + p}, "fromfile"},
		{"CADRE_ beats ETCD_", nil, []string{"ETCD_CONFIG_FILE=" + other, "CADRE_CONFIG_FILE=" + p}, "fromfile"},
		{"flag beats env", []string{"--config-file", p}, []string{"ETCD_CONFIG_FILE=" + other}, "fromfile"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, warns, err := Parse(tc.args, tc.env)
			if err != nil {
				t.Fatal(err)
			}
			if c.Name != tc.want {
				t.Errorf("name %q, want %q (warnings %q)", c.Name, tc.want, warns)
			}
		})
	}
}

// TestConfigFileErrors: each mistake is refused with the file, the line,
// the key and what was expected.
func TestConfigFileErrors(t *testing.T) {
	for _, tc := range []struct {
		name, text string
		want       []string
	}{
		{"bad YAML", "name: infra1\n  data-dir: x\n", []string{"not valid YAML", "line 2"}},
		{"unclosed list", "name: [a\n", []string{"not valid YAML", "line"}},
		{"top level is a list", "- name\n", []string{"expected keys and values", "line 1"}},
		{"string for milliseconds", "heartbeat-interval: fast\n", []string{`line 1: key "heartbeat-interval": invalid value "fast"`, "milliseconds"}},
		{"string for a count", "snapshot-count: many\n", []string{`key "snapshot-count"`, `"many"`}},
		{"word for a boolean", "enable-pprof: maybe\n", []string{`key "enable-pprof"`, "maybe"}},
		{"bad duration", "corrupt-check-time: soon\n", []string{`key "corrupt-check-time"`, "soon"}},
		{"list for a single value", "name: [a, b]\n", []string{`key "name": expected a single value, got a list`}},
		{"section for a value", "name:\n  first: a\n", []string{`key "name": expected a single value, got a section`}},
		{"value for a section", "client-transport-security: true\n", []string{`key "client-transport-security": expected a section of keys`}},
		{"bad nested boolean", "peer-transport-security:\n  client-cert-auth: sometimes\n", []string{`line 2: key "peer-transport-security.client-cert-auth"`, "sometimes"}},
		{"duplicate key", "name: a\ndata-dir: d\nname: b\n", []string{`line 3: key "name" appears twice (first at line 1)`}},
		{"TLS key at the top level", "cert-file: server.crt\n", []string{`key "cert-file" is not read at the top level`, "client-transport-security.cert-file"}},
		{"unknown gate", "feature-gates: NoSuchGate=true\n", []string{"config file", "NoSuchGate"}},
		{"v2 discovery", "discovery: https://discovery.etcd.io/x\n", []string{`key "discovery"`, "v2 discovery is not supported"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := writeFile(t, tc.text)
			_, _, err := Parse([]string{"--config-file=" + p}, nil)
			if err == nil {
				t.Fatal("accepted")
			}
			if !errors.Is(err, ErrUsage) && !errors.Is(err, ErrInvalid) {
				t.Errorf("error %v wraps neither ErrUsage nor ErrInvalid", err)
			}
			for _, w := range append(tc.want, p) {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
	_, _, err := Parse([]string{"--config-file=/nonexistent/etcd.yml"}, nil)
	if err == nil || !strings.Contains(err.Error(), "/nonexistent/etcd.yml") {
		t.Errorf("missing file: %v", err)
	}
}

// TestConfigFileWarnings: what etcd silently ignores, Cadre ignores too
// but says so.
func TestConfigFileWarnings(t *testing.T) {
	p := writeFile(t, "name: a\nlisten-client-url: http://127.0.0.1:2379\nclient-transport-security:\n  allowed-cn: [x]\n  bogus: 1\n")
	c, warns, err := Parse([]string{"--config-file=" + p}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.Name != "a" {
		t.Errorf("name %q", c.Name)
	}
	joined := strings.Join(warns, "\n")
	for _, want := range []string{
		`line 2: unknown key "listen-client-url" is ignored`,
		`line 4: key "client-transport-security.allowed-cn" is accepted for etcd compatibility, has no effect`,
		`line 5: unknown key "client-transport-security.bogus"`,
	} {
		if !strings.Contains(joined, want) {
			t.Errorf("warnings lack %q:\n%s", want, joined)
		}
	}
}

// TestConfigFileValueForms: etcd's YAML 1.1 booleans, empty values
// keeping the default, and comma-separated strings or YAML lists.
func TestConfigFileValueForms(t *testing.T) {
	p := writeFile(t, `name: a
enable-pprof: yes
strict-reconfig-check: off
data-dir: ""
log-outputs: stderr,stdout
listen-client-urls: [http://127.0.0.1:2379, "http://127.0.0.1:22379"]
advertise-client-urls: http://127.0.0.1:2379
discovery-config:
  token:
socket-options:
  reuse-port: false
`)
	c, _, err := Parse([]string{"--config-file=" + p}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !c.EnablePprof || c.StrictReconfigCheck || c.DataDir != "a.cadre" || strings.Join(c.LogOutputs, " ") != "stderr stdout" ||
		joinURLs(c.ListenClientURLs) != "http://127.0.0.1:2379,http://127.0.0.1:22379" {
		t.Errorf("values: pprof %v strict %v data-dir %q outputs %q listen %s", c.EnablePprof, c.StrictReconfigCheck, c.DataDir, c.LogOutputs, joinURLs(c.ListenClientURLs))
	}
	// An empty file is etcd's defaults (and Cadre's).
	c, _, err = Parse([]string{"--config-file=" + writeFile(t, "")}, nil)
	if err != nil || c.Name != DefaultName {
		t.Errorf("empty file: %v %+v", err, c)
	}
}

// TestConfigFileDiscoverySection: discovery-config holds etcd's v3
// discovery client settings.
func TestConfigFileDiscoverySection(t *testing.T) {
	p := writeFile(t, `name: a
discovery-config:
  token: cluster-1
  client:
    endpoints: [http://10.0.0.9:2379, http://10.0.0.10:2379]
    dial-timeout: 3000000000
    request-timeout: 4s
    secure:
      insecure-transport: false
      cacert: /ca.crt
    auth:
      username: root
      password: pw
`)
	c, _, err := Parse([]string{"--config-file=" + p}, nil)
	if err != nil {
		t.Fatal(err)
	}
	d := c.Discovery
	if d.Token != "cluster-1" || strings.Join(d.Endpoints, ",") != "http://10.0.0.9:2379,http://10.0.0.10:2379" || d.DialTimeout != 3*time.Second ||
		d.RequestTimeout != 4*time.Second || d.InsecureTransport || d.CACertFile != "/ca.crt" || d.User != "root" || d.Password != "pw" {
		t.Errorf("discovery = %+v", d)
	}
}

// TestConfigFileValidateNamesFile: a bad value found by Validate names
// the file, and the section key when it is not the flag's name.
func TestConfigFileValidateNamesFile(t *testing.T) {
	p := writeFile(t, "name: a\npeer-transport-security:\n  client-cert-auth: true\n  cert-file: p.crt\n  key-file: p.key\n")
	c, _, err := Parse([]string{"--config-file=" + p}, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = c.Validate()
	if err == nil || !strings.Contains(err.Error(), "config file "+p) || !strings.Contains(err.Error(), "peer-transport-security > trusted-ca-file") {
		t.Errorf("Validate: %v", err)
	}
	if !errors.Is(err, ErrInvalid) {
		t.Errorf("%v does not wrap ErrInvalid", err)
	}
}

// FuzzConfigFile: any file content gives a config or an error, never a
// panic (aliases, odd nesting, binary junk).
func FuzzConfigFile(f *testing.F) {
	for _, seed := range []string{fullFile, sampleShaped, "", "a: &x [1]\nb: *x\n", "client-transport-security:\n  - x\n", "? [a]\n: b\n", "\x00\xff"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, text string) {
		p := filepath.Join(t.TempDir(), "f.yml")
		if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		c, _, err := Parse([]string{"--config-file=" + p}, nil)
		if err == nil {
			_ = c.Validate()
		}
	})
}
