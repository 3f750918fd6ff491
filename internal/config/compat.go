package config

import (
	"errors"
	"flag"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Flags of etcd v3.7.3 that Cadre accepts but does not act on, so an etcd
// command line, environment or config file starts a Cadre member
// unchanged. The value is still parsed as etcd parses it (a typo is
// refused, not ignored), and a flag that was given is logged once as a
// warning naming it, unless its value is what Cadre does anyway.

type compatKind int

const (
	kindString compatKind = iota
	kindBool
	kindDuration
	kindUint
	kindInt
	kindIgnored // etcd's pre-v3 names: any value, or none
)

type compatFlag struct {
	name  string
	kind  compatKind
	def   string
	usage string
	// same lists values that mean what Cadre always does: no warning.
	same []string
	// why is appended to the warning: what Cadre does instead.
	why string
	// deprecated, if set, opens the warning: etcd's own deprecation text,
	// which operators and etcd's tests look for.
	deprecated string
	// check refuses values that would make Cadre do something other than
	// the operator asked (etcd refuses them too, or they need a feature
	// Cadre lacks).
	check func(v string) error
}

var compatFlags = []compatFlag{
	// Member.
	{name: "wal-dir", kind: kindString, usage: "Path to a dedicated WAL directory.", why: "the WAL stays in <data-dir>/member/wal"},
	{name: "max-snapshots", kind: kindUint, def: "5", usage: "Maximum number of snapshot files to retain (deprecated in etcd v3.6).",
		deprecated: "--max-snapshots is deprecated in 3.6 and will be decommissioned in 3.8"},
	{name: "max-wals", kind: kindUint, def: "5", usage: "Maximum number of WAL files to retain."},
	{name: "initial-election-tick-advance", kind: kindBool, def: "true", usage: "Fast-forward initial election ticks on boot."},
	{name: "memory-mlock", kind: kindBool, def: "false", same: []string{"false"}, usage: "Lock the backend's pages in RAM."},
	{name: "backend-bbolt-freelist-type", kind: kindString, def: "map", usage: "Freelist type of the bbolt backend (array or map)."},
	{name: "socket-reuse-port", kind: kindBool, def: "false", same: []string{"false"}, usage: "Set SO_REUSEPORT on listeners."},
	{name: "socket-reuse-address", kind: kindBool, def: "false", same: []string{"false"}, usage: "Set SO_REUSEADDR on listeners."},
	{name: "enable-grpc-gateway", kind: kindBool, def: "true", usage: "Enable the gRPC gateway (JSON over HTTP).", why: "Cadre serves only the members API over HTTP/JSON"},
	{name: "raft-read-timeout", kind: kindDuration, def: "5s", usage: "Read timeout on each raft peer connection."},
	{name: "raft-write-timeout", kind: kindDuration, def: "5s", usage: "Write timeout on each raft peer connection."},
	// Clustering.
	{name: "discovery", kind: kindString, same: []string{""}, usage: "etcd v2 discovery URL (removed; use --discovery-token and --discovery-endpoints).", check: func(v string) error {
		if v != "" {
			return errors.New("v2 discovery is not supported (etcd deprecated it in v3.6); bootstrap with --discovery-token and --discovery-endpoints, --discovery-srv or --initial-cluster")
		}
		return nil
	}},
	{name: "discovery-fallback", kind: kindString, def: "exit", same: []string{"exit"}, usage: "What to do when discovery fails: exit.", check: func(v string) error {
		if v != "exit" {
			return fmt.Errorf("only exit is supported (etcd v3 removed the v2 proxy that %q would start)", v)
		}
		return nil
	}},
	{name: "discovery-proxy", kind: kindString, usage: "HTTP proxy for v2 discovery (deprecated in etcd)."},
	{name: "pre-vote", kind: kindBool, def: "true", same: []string{"true"}, usage: "Enable raft Pre-Vote.", why: "Cadre always uses Pre-Vote"},
	{name: "v2-deprecation", kind: kindString, def: "write-only", usage: "Phase of v2store deprecation (etcd ignores the value too).", why: "Cadre has no v2 store",
		deprecated: "--v2-deprecation is deprecated and scheduled for removal in v3.8. The default value is enforced, ignoring user input"},
	// Security.
	{name: "peer-skip-client-san-verification", kind: kindBool, def: "false", same: []string{"true"}, usage: "Skip verifying peer client certificates' SANs against the remote address.", why: "Cadre never checks a peer certificate's SAN against the connection's address"},
	{name: "cors", kind: kindString, def: "*", same: []string{"*", ""}, usage: "Allowed CORS origins.", why: "Cadre sends no CORS headers"},
	{name: "host-whitelist", kind: kindString, def: "*", same: []string{"*", ""}, usage: "Acceptable Host headers of plain-HTTP requests.", why: "Cadre accepts any Host"},
	// Monitoring and logging.
	{name: "metrics", kind: kindString, def: "basic", same: []string{"basic"}, usage: "Detail of exported metrics: basic or extensive."},
	{name: "log-format", kind: kindString, def: "json", same: []string{"json"}, usage: "Log format: json or console.", why: "Cadre logs JSON lines"},
	{name: "enable-log-rotation", kind: kindBool, def: "false", same: []string{"false"}, usage: "Rotate a log-outputs file.", why: "Cadre logs only to stderr or stdout"},
	{name: "log-rotation-config-json", kind: kindString, usage: "Log rotation settings (JSON)."},
	{name: "warning-unary-request-duration", kind: kindDuration, def: "300ms", usage: "Log a warning for unary requests slower than this."},
	{name: "warning-apply-duration", kind: kindDuration, def: "100ms", usage: "Log a warning for applies slower than this."},
	{name: "enable-distributed-tracing", kind: kindBool, def: "false", same: []string{"false"}, usage: "Enable OpenTelemetry tracing."},
	{name: "distributed-tracing-address", kind: kindString, def: "localhost:4317", usage: "Tracing collector address."},
	{name: "distributed-tracing-service-name", kind: kindString, def: "etcd", usage: "Tracing service name."},
	{name: "distributed-tracing-instance-id", kind: kindString, usage: "Tracing instance ID."},
	{name: "distributed-tracing-sampling-rate", kind: kindInt, def: "0", usage: "Samples per million spans."},
	// Features.
	{name: "compact-hash-check-time", kind: kindDuration, def: "1m", usage: "Period of the leader's compaction hash check."},
	{name: "downgrade-check-time", kind: kindDuration, def: "5s", usage: "Period of the downgrade status check."},
	{name: "unsafe-no-fsync", kind: kindBool, def: "false", same: []string{"false"}, usage: "Disable fsync (unsafe).", why: "Cadre always fsyncs"},

	// etcd v3.5's experimental feature switches, which etcd v3.6 turned
	// into feature gates (--feature-gates) and v3.7 removed.
	{name: "experimental-enable-lease-checkpoint", kind: kindBool, def: "false", same: []string{"true"}, usage: "Deprecated: --feature-gates=LeaseCheckpoint=true.", why: "Cadre always checkpoints lease TTLs"},
	{name: "experimental-enable-lease-checkpoint-persist", kind: kindBool, def: "false", same: []string{"true"}, usage: "Deprecated: --feature-gates=LeaseCheckpointPersist=true.", why: "Cadre always persists lease checkpoints"},
	{name: "experimental-compact-hash-check-enabled", kind: kindBool, def: "false", same: []string{"false"}, usage: "Deprecated: --feature-gates=CompactHashCheck=true."},
	{name: "experimental-txn-mode-write-with-shared-buffer", kind: kindBool, def: "true", same: []string{"true"}, usage: "Deprecated: --feature-gates=TxnModeWriteWithSharedBuffer=true."},
	{name: "experimental-stop-grpc-service-on-defrag", kind: kindBool, def: "false", same: []string{"false"}, usage: "Deprecated: --feature-gates=StopGRPCServiceOnDefrag=true."},
}

// etcdIgnored are the pre-v3 flag names etcd v3.7.3 still accepts and
// ignores (etcdmain's "ignored" list), with or without a value.
var etcdIgnored = []string{
	"cluster-active-size", "cluster-remove-delay", "cluster-sync-interval", "config", "force",
	"max-result-buffer", "max-retry-attempts", "peer-heartbeat-interval", "peer-election-timeout",
	"retry-interval", "snapshot", "v", "vv",
}

// compatValue holds a compat flag's value, checked as etcd would parse it.
type compatValue struct {
	f   *compatFlag
	val string
}

func (v *compatValue) String() string {
	if v == nil || v.f == nil {
		return ""
	}
	return v.val
}

func (v *compatValue) Set(s string) error {
	s = strings.TrimSpace(s)
	var err error
	switch v.f.kind {
	case kindBool:
		var b bool
		if b, err = strconv.ParseBool(s); err != nil {
			return errors.New("expected true or false")
		}
		s = strconv.FormatBool(b)
	case kindDuration:
		if _, err = time.ParseDuration(s); err != nil {
			return errors.New("expected a duration like 100ms, 5s or 10m")
		}
	case kindUint:
		if _, err = strconv.ParseUint(s, 10, 64); err != nil {
			return errors.New("expected a whole number, 0 or more")
		}
	case kindInt:
		if _, err = strconv.ParseInt(s, 10, 64); err != nil {
			return errors.New("expected a whole number")
		}
	}
	if v.f.check != nil {
		if err := v.f.check(s); err != nil {
			return err
		}
	}
	v.val = s
	return nil
}

// IsBoolFlag lets --flag stand for --flag=true, as for etcd's booleans
// (and for the ignored pre-v3 names, which take any value or none).
func (v *compatValue) IsBoolFlag() bool { return v.f.kind == kindBool || v.f.kind == kindIgnored }

// isDuration tells the config file reader to accept etcd's integer
// nanoseconds for this flag.
func (v *compatValue) isDuration() bool { return v.f.kind == kindDuration }

// defineCompatFlags defines the compat flags and etcd's ignored names.
func defineCompatFlags(fs *flag.FlagSet) map[string]*compatValue {
	vals := map[string]*compatValue{}
	for i := range compatFlags {
		f := &compatFlags[i]
		v := &compatValue{f: f, val: f.def}
		vals[f.name] = v
		fs.Var(v, f.name, f.usage+" "+noEffect)
	}
	for _, name := range etcdIgnored {
		v := &compatValue{f: &compatFlag{name: name, kind: kindIgnored, why: "etcd ignores it too (a pre-v3 flag)"}}
		vals[name] = v
		fs.Var(v, name, "Ignored (a pre-v3 etcd flag). "+noEffect)
	}
	return vals
}

const noEffect = "Accepted for etcd compatibility, has no effect."

// isCompat reports whether name is a flag Cadre accepts without acting on.
func isCompat(name string) bool {
	for _, f := range compatFlags {
		if f.name == name {
			return true
		}
	}
	for _, n := range etcdIgnored {
		if n == name {
			return true
		}
	}
	return false
}

// compatWarnings names each compat flag that was given with a value Cadre
// does not already behave as.
func compatWarnings(vals map[string]*compatValue, set map[string]bool) []string {
	var warnings []string
	for _, name := range sortedKeys(vals) {
		if !set[name] {
			continue
		}
		v := vals[name]
		given := aliasesOf(name, set)
		if len(given) == 0 {
			given = []string{name}
		}
		same := false
		for _, s := range v.f.same {
			same = same || v.val == s
		}
		if same {
			continue
		}
		msg := fmt.Sprintf("--%s=%s is accepted for etcd compatibility, has no effect", given[0], v.val)
		if v.f.kind == kindIgnored {
			msg = fmt.Sprintf("--%s is accepted for etcd compatibility, has no effect", given[0])
		}
		if v.f.why != "" {
			msg += ": " + v.f.why
		}
		if v.f.deprecated != "" {
			msg = v.f.deprecated + "; " + msg
		}
		warnings = append(warnings, msg)
	}
	return warnings
}
