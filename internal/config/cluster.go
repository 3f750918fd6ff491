package config

import (
	"net/url"
	"slices"
	"sort"
	"strings"
)

// clusterEntry is one name=URL pair of --initial-cluster, in given order.
type clusterEntry struct {
	name string
	u    url.URL
}

// exampleURL is the URL quoted in fixes for a flag, on the flag's usual port.
func exampleURL(flagName string) string {
	switch {
	case strings.Contains(flagName, "client"):
		return "http://127.0.0.1:2379"
	case strings.Contains(flagName, "metrics"):
		return "http://127.0.0.1:2381"
	}
	return "http://127.0.0.1:2380"
}

// parseURLList parses a comma-separated URL flag. Only what url.Parse
// cannot represent fails here; Validate checks the rest, so configs built
// in code get the same checks.
func parseURLList(flagName, raw string) ([]url.URL, error) {
	var out []url.URL
	for _, p := range splitList(raw) {
		u, err := url.Parse(p)
		if err != nil {
			return nil, invalidf("invalid --%s %q: URL needs a scheme and host:port, like %s", flagName, p, exampleURL(flagName))
		}
		out = append(out, *u)
	}
	return out, nil
}

// parseClusterEntries splits --initial-cluster into name=URL entries.
// Empty items (a trailing comma) are skipped. An empty name is kept: that
// is how `etcdctl member add` prints members that have not started yet.
func parseClusterEntries(raw string) ([]clusterEntry, error) {
	var out []clusterEntry
	for _, item := range splitList(raw) {
		name, rawURL, ok := strings.Cut(item, "=")
		name, rawURL = strings.TrimSpace(name), strings.TrimSpace(rawURL)
		example := "infra1=" + exampleURL("")
		if ok && name != "" {
			example = name + "=" + exampleURL("")
		}
		switch {
		case !ok:
			return nil, invalidf("invalid --initial-cluster entry %q: expected name=peerURL, like %s", item, example)
		case rawURL == "":
			return nil, invalidf("invalid --initial-cluster entry %q: the peer URL is empty; expected name=peerURL, like %s", item, example)
		}
		u, err := url.Parse(rawURL)
		if err != nil {
			return nil, invalidf("invalid --initial-cluster entry %q: URL needs a scheme and host:port, like %s", item, example)
		}
		out = append(out, clusterEntry{name: name, u: *u})
	}
	return out, nil
}

func parseInitialCluster(raw string) (map[string][]url.URL, error) {
	entries, err := parseClusterEntries(raw)
	if err != nil {
		return nil, err
	}
	return entriesMap(entries), nil
}

func entriesMap(entries []clusterEntry) map[string][]url.URL {
	m := map[string][]url.URL{}
	for _, e := range entries {
		m[e.name] = append(m[e.name], e.u)
	}
	return m
}

// clusterEntries returns the entries in the user's order when
// InitialClusterRaw still describes InitialCluster, else sorted by name
// (for configs edited in code).
func (c *Config) clusterEntries() []clusterEntry {
	if entries, err := parseClusterEntries(c.InitialClusterRaw); err == nil && sameCluster(entriesMap(entries), c.InitialCluster) {
		return entries
	}
	names := make([]string, 0, len(c.InitialCluster))
	for n := range c.InitialCluster {
		names = append(names, n)
	}
	sort.Strings(names)
	var out []clusterEntry
	for _, n := range names {
		for _, u := range c.InitialCluster[n] {
			out = append(out, clusterEntry{name: n, u: u})
		}
	}
	return out
}

func sameCluster(a, b map[string][]url.URL) bool {
	if len(a) != len(b) {
		return false
	}
	for n, us := range a {
		if !slices.Equal(URLStrings(us), URLStrings(b[n])) {
			return false
		}
	}
	return true
}

func renderEntries(entries []clusterEntry) string {
	parts := make([]string, len(entries))
	for i, e := range entries {
		parts[i] = e.name + "=" + e.u.String()
	}
	return strings.Join(parts, ",")
}

// clusterText is --initial-cluster as the user should recognise it.
func (c *Config) clusterText() string { return renderEntries(c.clusterEntries()) }

// clusterWith renders --initial-cluster with name's URLs replaced by urls,
// at the place name first appeared (appended if absent).
func (c *Config) clusterWith(name string, urls []url.URL) string {
	var out []clusterEntry
	placed := false
	for _, e := range c.clusterEntries() {
		if e.name != name {
			out = append(out, e)
			continue
		}
		if !placed {
			for _, u := range urls {
				out = append(out, clusterEntry{name: name, u: u})
			}
			placed = true
		}
	}
	if !placed {
		for _, u := range urls {
			out = append(out, clusterEntry{name: name, u: u})
		}
	}
	return renderEntries(out)
}

// urlKey compares URLs the way a listener sees them: scheme and host are
// case-insensitive. No DNS lookups (Validate is pure), so localhost and
// 127.0.0.1 are different URLs here.
func urlKey(u url.URL) string {
	return strings.ToLower(u.Scheme) + "://" + strings.ToLower(u.Host)
}
