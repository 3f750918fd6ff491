package config

import (
	"flag"
	"fmt"
	"sort"
)

// experimentalAliases are etcd v3.5's --experimental-* names that etcd
// v3.6 renamed (and v3.7 removed). Cadre still takes them, so command lines
// and config files written for older etcd keep working: each sets the new
// flag, with a deprecation warning. Giving both names is refused, as etcd
// v3.6 refuses it, since one would silently override the other.
var experimentalAliases = map[string]string{
	"experimental-snapshot-catchup-entries":             "snapshot-catchup-entries",
	"experimental-snapshot-catch-up-entries":            "snapshot-catchup-entries", // etcd v3.5's misspelling
	"experimental-max-learners":                         "max-learners",
	"experimental-initial-corrupt-check":                "initial-corrupt-check",
	"experimental-corrupt-check-time":                   "corrupt-check-time",
	"experimental-watch-progress-notify-interval":       "watch-progress-notify-interval",
	"experimental-compact-hash-check-time":              "compact-hash-check-time",
	"experimental-compaction-batch-limit":               "compaction-batch-limit",
	"experimental-compaction-sleep-interval":            "compaction-sleep-interval",
	"experimental-warning-apply-duration":               "warning-apply-duration",
	"experimental-warning-unary-request-duration":       "warning-unary-request-duration",
	"experimental-bootstrap-defrag-threshold-megabytes": "bootstrap-defrag-threshold-megabytes",
	"experimental-memory-mlock":                         "memory-mlock",
	"experimental-downgrade-check-time":                 "downgrade-check-time",
	"experimental-peer-skip-client-san-verification":    "peer-skip-client-san-verification",
	"experimental-enable-distributed-tracing":           "enable-distributed-tracing",
	"experimental-distributed-tracing-address":          "distributed-tracing-address",
	"experimental-distributed-tracing-service-name":     "distributed-tracing-service-name",
	"experimental-distributed-tracing-instance-id":      "distributed-tracing-instance-id",
	"experimental-distributed-tracing-sampling-rate":    "distributed-tracing-sampling-rate",
}

// defineAliases registers every alias on its target's Value, so the two
// names share one setting. Call it after all targets are defined.
func defineAliases(fs *flag.FlagSet) {
	for _, old := range sortedKeys(experimentalAliases) {
		target := fs.Lookup(experimentalAliases[old])
		if target == nil {
			panic("config: alias --" + old + " of undefined flag") // a bug in this table
		}
		fs.Var(target.Value, old, "Deprecated: use --"+target.Name+" (etcd v3.6 renamed it).")
	}
}

// checkAliases refuses an old and a new name given together, warns about
// each old name, and marks the new name as set so later rules see it.
func checkAliases(set map[string]bool) ([]string, error) {
	var warnings []string
	for _, old := range sortedKeys(experimentalAliases) {
		if !set[old] {
			continue
		}
		target := experimentalAliases[old]
		if set[target] {
			return nil, usageErrorf("--%s and --%s are both set; they are the same setting (etcd v3.6 renamed it): keep --%s only", old, target, target)
		}
		set[target] = true
		warnings = append(warnings, fmt.Sprintf("--%s is deprecated (etcd v3.6 renamed it and v3.7 removed it); use --%s", old, target))
	}
	return warnings, nil
}

// aliasesOf lists the old names of target that were given.
func aliasesOf(target string, set map[string]bool) []string {
	var out []string
	for _, old := range sortedKeys(experimentalAliases) {
		if experimentalAliases[old] == target && set[old] {
			out = append(out, old)
		}
	}
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
