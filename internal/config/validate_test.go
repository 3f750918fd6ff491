package config

import (
	"errors"
	"net/url"
	"strings"
	"testing"
	"time"
)

// parseValidate runs what `cadre` does at startup: Parse, then Validate.
func parseValidate(args, env []string) error {
	c, _, err := Parse(args, env)
	if err != nil {
		return err
	}
	return c.Validate()
}

func TestValidateErrors(t *testing.T) {
	three := "--initial-cluster=infra1=http://127.0.0.1:12380,infra2=http://127.0.0.1:22380,infra3=http://127.0.0.1:32380"
	tests := []struct {
		name string
		args []string
		want string // the whole message
	}{
		// URLs.
		{"scheme missing (parse)", []string{"--listen-client-urls=127.0.0.1:2379"},
			`invalid --listen-client-urls "127.0.0.1:2379": URL needs a scheme and host:port, like http://127.0.0.1:2379`},
		{"scheme missing (opaque)", []string{"--initial-advertise-peer-urls=localhost:2380"},
			`invalid --initial-advertise-peer-urls "localhost:2380": URL needs a scheme and host:port, like http://127.0.0.1:2380`},
		{"host missing", []string{"--advertise-client-urls=http://"},
			`invalid --advertise-client-urls "http:": URL needs a scheme and host:port, like http://127.0.0.1:2379`},
		{"bad scheme", []string{"--listen-peer-urls=ftp://127.0.0.1:2380"},
			`invalid --listen-peer-urls "ftp://127.0.0.1:2380": scheme "ftp" is not supported; use http, https or unix, like http://127.0.0.1:2380`},
		{"no port", []string{"--listen-client-urls=http://127.0.0.1"},
			`invalid --listen-client-urls "http://127.0.0.1": URL has no port; add one, like http://127.0.0.1:2379`},
		{"no port advertise", []string{"--advertise-client-urls=http://example.com"},
			`invalid --advertise-client-urls "http://example.com": URL has no port; add one, like http://example.com:2379`},
		{"https metrics without client TLS", []string{"--listen-metrics-urls=https://127.0.0.1:2381"},
			`invalid --listen-metrics-urls https://127.0.0.1:2381: client TLS key/cert (--cert-file, --key-file) must be provided for metrics secure url; give them, or use http:// for the metrics URL`},
		{"empty port", []string{"--listen-metrics-urls=http://127.0.0.1:"},
			`invalid --listen-metrics-urls "http://127.0.0.1:": port "" is not a number from 0 to 65535`},
		{"empty host", []string{"--listen-peer-urls=http://:2380"},
			`invalid --listen-peer-urls "http://:2380": URL has no host; give an IP address or host name, like http://127.0.0.1:2380`},
		{"path", []string{"--listen-client-urls=http://127.0.0.1:2379/v3"},
			`invalid --listen-client-urls "http://127.0.0.1:2379/v3": URL must not have a path, query, fragment or user info; use http://127.0.0.1:2379`},
		{"trailing slash", []string{"--advertise-client-urls=http://127.0.0.1:2379/"},
			`invalid --advertise-client-urls "http://127.0.0.1:2379/": URL must not have a path, query, fragment or user info; use http://127.0.0.1:2379`},
		{"query", []string{"--listen-metrics-urls=http://127.0.0.1:2381?x=1"},
			`invalid --listen-metrics-urls "http://127.0.0.1:2381?x=1": URL must not have a path, query, fragment or user info; use http://127.0.0.1:2381`},
		{"user info", []string{"--advertise-client-urls=http://u:p@127.0.0.1:2379"},
			`invalid --advertise-client-urls "http://u:xxxxx@127.0.0.1:2379": URL must not have a path, query, fragment or user info; use http://127.0.0.1:2379`},
		{"listen host name", []string{"--listen-client-urls=http://example.com:2379"},
			`invalid --listen-client-urls "http://example.com:2379": listen URLs must use an IP address or localhost, not the host name "example.com"; use http://0.0.0.0:2379 to listen on all interfaces or the machine's IP`},
		{"listen metrics host name", []string{"--listen-metrics-urls=http://metrics.local:9000"},
			`invalid --listen-metrics-urls "http://metrics.local:9000": listen URLs must use an IP address or localhost, not the host name "metrics.local"; use http://0.0.0.0:9000 to listen on all interfaces or the machine's IP`},
		{"listen https", []string{"--listen-client-urls=https://127.0.0.1:2379"},
			`--listen-client-urls https://127.0.0.1:2379 is https but there is no certificate: give --cert-file and --key-file, or --auto-tls`},
		{"peer https", []string{"--listen-peer-urls=https://127.0.0.1:2380"},
			`--listen-peer-urls https://127.0.0.1:2380 is https but there is no certificate: give --peer-cert-file and --peer-key-file, or --peer-auto-tls`},
		{"cert without key", []string{"--cert-file=c.pem"}, `--cert-file and --key-file go together: give both (or neither)`},
		{"client cert auth without CA", []string{"--peer-client-cert-auth", "--peer-auto-tls"},
			`--peer-client-cert-auth needs --peer-trusted-ca-file: the CA that signs the certificates to accept`},
		{"tls version", []string{"--tls-min-version=TLS1.1"}, `invalid --tls-min-version "TLS1.1": use TLS1.2 or TLS1.3`},
		{"allowed cn without client auth", []string{"--peer-cert-allowed-cn=infra"},
			`--peer-cert-allowed-cn and --peer-cert-allowed-hostname need --peer-client-cert-auth: only a verified client certificate has a name to check`},
		{"empty listen list", []string{"--listen-client-urls="},
			`--listen-client-urls is empty; give at least one URL, like --listen-client-urls=http://127.0.0.1:2379`},
		{"bad URL in cluster", []string{"--initial-cluster=default=http://127.0.0.1:2380,b=http://127.0.0.1"},
			`invalid --initial-cluster "http://127.0.0.1": URL has no port; add one, like http://127.0.0.1:2380`},

		// --initial-cluster.
		{"empty cluster", []string{"--initial-cluster="},
			`--initial-cluster is empty; list every member as name=peerURL, like --initial-cluster=default=http://127.0.0.1:2380`},
		{"duplicate across names", []string{"--initial-cluster=default=http://127.0.0.1:2380,infra2=http://127.0.0.1:2380"},
			`--initial-cluster "default=http://127.0.0.1:2380,infra2=http://127.0.0.1:2380" lists peer URL http://127.0.0.1:2380 for both "default" and "infra2"; every member needs its own peer URLs`},
		{"duplicate same name", []string{"--initial-cluster=default=http://127.0.0.1:2380,default=http://127.0.0.1:2380"},
			`--initial-cluster "default=http://127.0.0.1:2380,default=http://127.0.0.1:2380" lists peer URL http://127.0.0.1:2380 twice for "default"; list each URL once`},
		{"duplicate differs only in case", []string{"--initial-cluster=default=http://127.0.0.1:2380,b=HTTP://127.0.0.1:2380"},
			`lists peer URL http://127.0.0.1:2380 for both "b" and "default"`},
		{"name not in cluster", []string{"--name=infra4", three},
			`--name "infra4" is not in --initial-cluster "infra1=http://127.0.0.1:12380,infra2=http://127.0.0.1:22380,infra3=http://127.0.0.1:32380"; add infra4=http://127.0.0.1:2380 to --initial-cluster or fix --name`},
		{"advertise mismatch", []string{"--name=infra2", three},
			`--initial-advertise-peer-urls "http://127.0.0.1:2380" does not match the peer URLs of "infra2" in --initial-cluster (http://127.0.0.1:22380); they must list the same URLs: use --initial-advertise-peer-urls=http://127.0.0.1:22380, or --initial-cluster=infra1=http://127.0.0.1:12380,infra2=http://127.0.0.1:2380,infra3=http://127.0.0.1:32380`},
		{"advertise subset", []string{"--initial-cluster=default=http://127.0.0.1:2380,default=http://127.0.0.1:2480"},
			`--initial-advertise-peer-urls "http://127.0.0.1:2380" does not match the peer URLs of "default" in --initial-cluster (http://127.0.0.1:2380,http://127.0.0.1:2480); they must list the same URLs: use --initial-advertise-peer-urls=http://127.0.0.1:2380,http://127.0.0.1:2480, or --initial-cluster=default=http://127.0.0.1:2380`},
		{"localhost is not 127.0.0.1", []string{"--initial-cluster=default=http://localhost:2380"},
			`--initial-advertise-peer-urls "http://127.0.0.1:2380" does not match the peer URLs of "default" in --initial-cluster (http://localhost:2380)`},
		{"empty name with state new", []string{"--initial-cluster=default=http://127.0.0.1:2380,=http://127.0.0.1:22380"},
			`--initial-cluster "default=http://127.0.0.1:2380,=http://127.0.0.1:22380" has a member without a name ("=http://127.0.0.1:22380"); with --initial-cluster-state=new every member needs its --name, like infra2=http://127.0.0.1:22380`},
		{"bad state", []string{"--initial-cluster-state=join"},
			`invalid --initial-cluster-state "join": use new (bootstrap a new cluster) or existing (join a running cluster)`},
		{"empty name", []string{"--name=", "--initial-cluster=a=http://127.0.0.1:2380"},
			`--name is empty; give this member a name, like --name=infra1`},

		// Raft timing and limits.
		{"heartbeat 0", []string{"--heartbeat-interval=0"},
			`invalid --heartbeat-interval=0: it must be more than 0 milliseconds; the default is 100`},
		{"heartbeat negative", []string{"--heartbeat-interval=-5"},
			`invalid --heartbeat-interval=-5: it must be more than 0 milliseconds; the default is 100`},
		{"election < 5x heartbeat", []string{"--heartbeat-interval=100", "--election-timeout=499"},
			`invalid --election-timeout=499: it must be at least 5 times --heartbeat-interval=100, so at least 500; raise --election-timeout or lower --heartbeat-interval`},
		{"election too long", []string{"--election-timeout=50001"},
			`invalid --election-timeout=50001: it must be at most 50000 milliseconds`},
		{"snapshot-count 0", []string{"--snapshot-count=0"},
			`invalid --snapshot-count=0: it must be at least 1; the default is 10000`},
		{"max-request-bytes 0", []string{"--max-request-bytes=0"},
			`invalid --max-request-bytes=0: it must be at least 1; the default is 1572864`},
		{"max-txn-ops 0", []string{"--max-txn-ops=0"},
			`invalid --max-txn-ops=0: it must be at least 1; the default is 128`},
		{"max-learners negative", []string{"--max-learners=-1"},
			`invalid --max-learners=-1: it must be 0 or more; the default is 1`},
		{"quota negative", []string{"--quota-backend-bytes=-1"},
			`invalid --quota-backend-bytes=-1: it must be 0 (the 2 GiB default) or more`},
		{"auth token", []string{"--auth-token=paseto"}, `invalid --auth-token "paseto": use simple or jwt,pub-key=...,priv-key=...,sign-method=...`},
		{"jwt without key", []string{"--auth-token=jwt,sign-method=RS256"},
			`invalid --auth-token "jwt,sign-method=RS256": jwt needs pub-key=<PEM file> (and priv-key=<PEM file> on members that issue tokens), like jwt,pub-key=jwt.pub,priv-key=jwt.key,sign-method=RS256`},
		{"bcrypt cost", []string{"--bcrypt-cost=3"}, `invalid --bcrypt-cost 3: it must be between 4 and 31; the default is 10`},
		{"corrupt check negative", []string{"--corrupt-check-time=-1s"},
			`invalid --corrupt-check-time=-1s: it must be 0 (off) or a positive duration like 5m`},
		{"corrupt check too often", []string{"--experimental-corrupt-check-time=10ms"},
			`invalid --corrupt-check-time=10ms: hashing the whole key history that often would starve the member; use 1s or more`},

		// Logging and flags accepted for later.
		{"log level", []string{"--log-level=verbose"}, `invalid --log-level "verbose": use debug, info, warn or error`},
		{"logger", []string{"--logger=capnslog"}, `invalid --logger "capnslog": cadre has only the zap-style JSON logger; use --logger=zap or leave it out`},
		{"log outputs", []string{"--log-outputs=/var/log/etcd.log"},
			`invalid --log-outputs "/var/log/etcd.log": cadre can log only to stderr, stdout or default (stderr); use --log-outputs=stderr`},
		{"compaction mode", []string{"--auto-compaction-mode=hourly"}, `invalid --auto-compaction-mode "hourly": use periodic or revision`},
		{"periodic retention", []string{"--auto-compaction-retention=1 hour"},
			`invalid --auto-compaction-retention "1 hour" for --auto-compaction-mode=periodic: use hours as an integer, like 1, or a duration, like 30m`},
		{"revision retention", []string{"--auto-compaction-mode=revision", "--auto-compaction-retention=1h"},
			`invalid --auto-compaction-retention "1h" for --auto-compaction-mode=revision: use a number of revisions, like 1000`},
		{"discovery existing", []string{"--discovery-srv=example.com", "--initial-cluster-state=existing"},
			"--discovery-srv is set with --initial-cluster-state=existing: discovery only bootstraps a new cluster; to join a running cluster, run `member add` and start this member with the --initial-cluster it prints (and no discovery flags)"},
		{"discovery token existing", []string{"--discovery-token=t1", "--discovery-endpoints=127.0.0.1:2379", "--initial-cluster-state=existing"},
			"--discovery-token is set with --initial-cluster-state=existing: discovery only bootstraps a new cluster; to join a running cluster, run `member add` and start this member with the --initial-cluster it prints (and no discovery flags)"},
		{"discovery and initial cluster", []string{"--discovery-token=t1", "--discovery-endpoints=127.0.0.1:2379", "--initial-cluster=default=http://127.0.0.1:2380"},
			`--initial-cluster and --discovery-token are both set; use one bootstrap method: drop --initial-cluster (discovery builds it) or drop the discovery flags`},
		{"discovery token without endpoints", []string{"--discovery-token=t1"},
			`--discovery-token "t1" is set but --discovery-endpoints is empty; list the discovery cluster's client URLs, like --discovery-endpoints=http://10.0.0.9:2379`},
		{"discovery endpoints without token", []string{"--discovery-endpoints=127.0.0.1:2379"},
			`--discovery-endpoints is set but --discovery-token is empty; give the token this cluster registers under, like --discovery-token=my-cluster-1`},
		{"discovery two methods", []string{"--discovery-token=t1", "--discovery-endpoints=127.0.0.1:2379", "--discovery-srv=example.com"},
			`--discovery-token and --discovery-srv are both set; use one bootstrap method`},
		{"discovery srv name alone", []string{"--discovery-srv-name=prod"},
			`--discovery-srv-name "prod" is set but --discovery-srv is empty; give the DNS domain, like --discovery-srv=example.com`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := parseValidate(tt.args, nil)
			if err == nil {
				t.Fatalf("no error, want %q", tt.want)
			}
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("errors.Is(%v, ErrInvalid) = false", err)
			}
			if msg := err.Error(); !strings.Contains(msg, tt.want) || strings.Contains(msg, "\n") {
				t.Errorf("error\n got %s\nwant %s", msg, tt.want)
			}
		})
	}
}

func TestValidateAccepts(t *testing.T) {
	for _, args := range [][]string{
		{"--listen-client-urls=http://0.0.0.0:2379,http://[::]:2379,http://localhost:2379,unix://cadre.sock:0"},
		{"--listen-client-urls=http://127.0.0.1:0", "--listen-peer-urls=http://127.0.0.1:0"},
		{"--advertise-client-urls=https://etcd.example.com:2379"},
		{"--name=n1", "--initial-advertise-peer-urls=http://n1.example.com:2380",
			"--initial-cluster=n1=http://n1.example.com:2380,n2=http://n2.example.com:2380", "--listen-peer-urls=http://0.0.0.0:2380"},
		{"--initial-cluster=default=http://127.0.0.1:2380,", "--initial-cluster-state=existing"},
		{"--initial-cluster=default=HTTP://127.0.0.1:2380"}, // scheme case does not matter
		{"--heartbeat-interval=10", "--election-timeout=50"},
		{"--auto-compaction-retention=30m"},
		{"--auto-compaction-retention=12"},
		{"--auto-compaction-mode=revision", "--auto-compaction-retention=1000"},
		{"--max-learners=0", "--log-level=error", "--log-outputs=stdout", "--enable-v2"},
	} {
		if err := parseValidate(args, nil); err != nil {
			t.Errorf("%q: %v", args, err)
		}
	}
}

// Validate also guards configs built in code, where Raw may be stale.
func TestValidateProgrammatic(t *testing.T) {
	c := Default()
	c.Name = "a"
	c.InitialCluster = map[string][]url.URL{
		"b": {{Scheme: "http", Host: "127.0.0.1:2381"}},
		"a": {{Scheme: "http", Host: "127.0.0.1:2390"}},
	}
	err := c.Validate()
	want := `use --initial-advertise-peer-urls=http://127.0.0.1:2390, or --initial-cluster=a=http://127.0.0.1:2380,b=http://127.0.0.1:2381`
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("err = %v, want %q (entries rendered sorted when Raw is stale)", err, want)
	}

	c = Default()
	c.ElectionTimeout = 1500 * time.Microsecond
	c.HeartbeatInterval = time.Millisecond
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "--election-timeout=1:") {
		t.Errorf("err = %v", err)
	}

	c = Default()
	c.DataDir = ""
	if err := c.Validate(); err == nil || err.Error() != "--data-dir is empty; give a directory, like --data-dir=default.cadre" {
		t.Errorf("err = %v", err)
	}

	c = Default()
	c.InitialCluster["default"] = nil
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), `has no peer URL for "default"; add default=<its peer URL>`) {
		t.Errorf("err = %v", err)
	}
}

func TestValidateWithDataIgnoresBootstrapFlags(t *testing.T) {
	// The article's update flow: infra1 restarts on a new peer URL with
	// its data dir and the --initial-cluster it was created with.
	cfg, _, err := Parse([]string{
		"--name", "infra1",
		"--listen-peer-urls", "http://127.0.0.1:12381",
		"--initial-advertise-peer-urls", "http://127.0.0.1:12381",
		"--initial-cluster", "infra1=http://127.0.0.1:12380,infra2=http://127.0.0.1:22380",
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "--initial-advertise-peer-urls") {
		t.Fatalf("Validate = %v, want the advertise/initial-cluster mismatch", err)
	}
	if err := cfg.ValidateWithData(); err != nil {
		t.Fatalf("ValidateWithData = %v, want nil: the bootstrap flags do not matter with data", err)
	}
	cfg.ListenPeerURLs = nil
	if err := cfg.ValidateWithData(); err == nil {
		t.Fatal("ValidateWithData must still check the other flags")
	}
}
