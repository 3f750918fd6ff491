package config

import (
	"fmt"
	"regexp"
	"strings"
)

// The keys of etcd's configuration file (server/embed/config.go in etcd
// v3.7.3: the json tags of Config, configJSON and securityConfig). A
// top-level key is a flag name (any of Cadre's flags works, with the
// value it takes on the command line); the TLS and v3 discovery settings
// live in sections, listed here with the flag each key sets. A key mapped
// to "" is accepted and has no effect.

// fileSections are the keys whose value is a section of keys.
var fileSections = map[string]bool{
	"client-transport-security":      true,
	"peer-transport-security":        true,
	"discovery-config":               true,
	"discovery-config.client":        true,
	"discovery-config.client.secure": true,
	"discovery-config.client.auth":   true,
	"socket-options":                 true,
}

// fileKeys maps each key inside a section to its flag.
var fileKeys = map[string]string{
	"client-transport-security.cert-file":                    "cert-file",
	"client-transport-security.key-file":                     "key-file",
	"client-transport-security.client-cert-file":             "client-cert-file",
	"client-transport-security.client-key-file":              "client-key-file",
	"client-transport-security.client-cert-auth":             "client-cert-auth",
	"client-transport-security.trusted-ca-file":              "trusted-ca-file",
	"client-transport-security.auto-tls":                     "auto-tls",
	"client-transport-security.allowed-hostname":             "client-cert-allowed-hostname",
	"client-transport-security.allowed-cn":                   "", // etcd has no client-port flag for it either
	"client-transport-security.skip-client-san-verification": "",

	"peer-transport-security.cert-file":                    "peer-cert-file",
	"peer-transport-security.key-file":                     "peer-key-file",
	"peer-transport-security.client-cert-file":             "peer-client-cert-file",
	"peer-transport-security.client-key-file":              "peer-client-key-file",
	"peer-transport-security.client-cert-auth":             "peer-client-cert-auth",
	"peer-transport-security.trusted-ca-file":              "peer-trusted-ca-file",
	"peer-transport-security.auto-tls":                     "peer-auto-tls",
	"peer-transport-security.allowed-cn":                   "peer-cert-allowed-cn",
	"peer-transport-security.allowed-hostname":             "peer-cert-allowed-hostname",
	"peer-transport-security.skip-client-san-verification": "peer-skip-client-san-verification",

	"discovery-config.token":                                  "discovery-token",
	"discovery-config.client.endpoints":                       "discovery-endpoints",
	"discovery-config.client.dial-timeout":                    "discovery-dial-timeout",
	"discovery-config.client.request-timeout":                 "discovery-request-timeout",
	"discovery-config.client.keepalive-time":                  "discovery-keepalive-time",
	"discovery-config.client.keepalive-timeout":               "discovery-keepalive-timeout",
	"discovery-config.client.max-request-bytes":               "",
	"discovery-config.client.max-recv-bytes":                  "",
	"discovery-config.client.secure.cert":                     "discovery-cert",
	"discovery-config.client.secure.key":                      "discovery-key",
	"discovery-config.client.secure.cacert":                   "discovery-cacert",
	"discovery-config.client.secure.server-name":              "",
	"discovery-config.client.secure.insecure-transport":       "discovery-insecure-transport",
	"discovery-config.client.secure.insecure-skip-tls-verify": "discovery-insecure-skip-tls-verify",
	"discovery-config.client.auth.username":                   "discovery-user",
	"discovery-config.client.auth.password":                   "discovery-password",

	"socket-options.reuse-port":    "socket-reuse-port",
	"socket-options.reuse-address": "socket-reuse-address",
}

// removedKeys are keys of older etcd files (etcd.conf.yml.sample still
// has some) that etcd v3.7.3 no longer reads; they are ignored with a
// warning saying why.
var removedKeys = map[string]string{
	"proxy":                  "the v2 proxy was removed from etcd v3",
	"proxy-failure-wait":     "the v2 proxy was removed from etcd v3",
	"proxy-refresh-interval": "the v2 proxy was removed from etcd v3",
	"proxy-dial-timeout":     "the v2 proxy was removed from etcd v3",
	"proxy-write-timeout":    "the v2 proxy was removed from etcd v3",
	"proxy-read-timeout":     "the v2 proxy was removed from etcd v3",
	// Flags that etcd v3.7.3 takes only on the command line.
	"discovery-fallback": "etcd reads it only on the command line; a failed discovery always exits",
	"discovery-proxy":    "etcd reads it only on the command line (v2 discovery)",
}

// listFlags take comma-separated lists; in a file they may also be YAML
// lists.
var listFlags = map[string]bool{
	"listen-client-urls": true, "advertise-client-urls": true, "listen-peer-urls": true,
	"initial-advertise-peer-urls": true, "listen-metrics-urls": true, "listen-client-http-urls": true,
	"log-outputs": true, "cipher-suites": true, "discovery-endpoints": true,
	"peer-cert-allowed-cn": true, "peer-cert-allowed-hostname": true, "client-cert-allowed-hostname": true,
	"cors": true, "host-whitelist": true,
}

// fileOnlyUnder reports whether a flag is read from a section only: etcd
// ignores it at the top level, and honouring it there would make the
// same file mean different things to etcd and Cadre (say, TLS off in one).
func fileOnlyUnder(flagName string) bool { return nestedKeyFor(flagName) != "" }

// nestedKeyFor is the section key that sets flagName, or "".
func nestedKeyFor(flagName string) string {
	for k, f := range fileKeys {
		if f == flagName && f != "" {
			return k
		}
	}
	return ""
}

var flagInMessage = regexp.MustCompile(`--([a-z0-9-]+)`)

// fileKeyHint names the file key behind each flag an error mentions
// whose key is not the flag's name, e.g. --peer-cert-file is
// peer-transport-security > cert-file.
func fileKeyHint(msg string) string {
	var hints []string
	seen := map[string]bool{}
	for _, m := range flagInMessage.FindAllStringSubmatch(msg, -1) {
		if k := nestedKeyFor(m[1]); k != "" && !seen[m[1]] {
			seen[m[1]] = true
			hints = append(hints, fmt.Sprintf("--%s is %s", m[1], strings.ReplaceAll(k, ".", " > ")))
		}
	}
	if len(hints) == 0 {
		return ""
	}
	return " (in the file, " + strings.Join(hints, ", ") + ")"
}
