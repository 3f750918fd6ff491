package config

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// etcd v3.7.3's server feature gates (`etcd --help`), and what each means
// for Cadre. A gate Cadre acts on changes its behaviour as in etcd; one
// whose behaviour Cadre always has is accepted silently when enabled; the
// rest are accepted with one warning naming them, so an etcd command line
// or manifest starts a Cadre member unchanged.
var featureGates = map[string]string{
	"InitialCorruptCheck":          "act",    // --initial-corrupt-check
	"LeaseCheckpoint":              "always", // Cadre always checkpoints remaining TTLs
	"LeaseCheckpointPersist":       "always", // ...and persists them
	"FastLeaseKeepAlive":           "always", // keep-alives are answered by the leader at once
	"TxnModeWriteWithSharedBuffer": "always", // no such distinction in Cadre's backend
	"AllAlpha":                     "noop",
	"AllBeta":                      "noop",
	"CompactHashCheck":             "noop",
	"PriorityRequest":              "noop",
	"SetMemberLocalAddr":           "noop",
	"StopGRPCServiceOnDefrag":      "noop",
}

// applyFeatureGates parses --feature-gates ("Name=true,Other=false") and
// applies the gates Cadre acts on. set says which flags were given, so an
// explicit --initial-corrupt-check that contradicts the gate is refused
// rather than silently overridden.
func applyFeatureGates(c *Config, raw string, set map[string]bool) ([]string, error) {
	if strings.TrimSpace(raw) == "" {
		return nil, nil
	}
	var warnings []string
	names := make([]string, 0, len(featureGates))
	for n := range featureGates {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, kv := range strings.Split(raw, ",") {
		kv = strings.TrimSpace(kv)
		if kv == "" {
			continue
		}
		name, val, ok := strings.Cut(kv, "=")
		name = strings.TrimSpace(name)
		on, err := strconv.ParseBool(strings.TrimSpace(val))
		if !ok || err != nil {
			return nil, invalidf("invalid --feature-gates=%q: %q is not Name=true|false; example: --feature-gates=InitialCorruptCheck=true", raw, kv)
		}
		kind, known := featureGates[name]
		if !known {
			return nil, invalidf("invalid --feature-gates=%q: unrecognized feature gate %q; known gates: %s", raw, name, strings.Join(names, ", "))
		}
		switch kind {
		case "act":
			if set["initial-corrupt-check"] || set["experimental-initial-corrupt-check"] {
				if c.InitialCorruptCheck != on {
					return nil, invalidf("--feature-gates=InitialCorruptCheck=%v contradicts --initial-corrupt-check=%v; give one of them", on, c.InitialCorruptCheck)
				}
				continue
			}
			c.InitialCorruptCheck = on
		case "always":
			if !on {
				warnings = append(warnings, fmt.Sprintf("--feature-gates %s=false is ignored: Cadre always behaves as if it were enabled", name))
			}
		default:
			warnings = append(warnings, fmt.Sprintf("--feature-gates %s=%v is accepted for etcd command lines and has no effect in Cadre", name, on))
		}
	}
	return warnings, nil
}
