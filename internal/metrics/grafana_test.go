package metrics

import (
	"os"
	"regexp"
	"testing"
)

// TestGrafanaDashboardUsesExportedNames: every metric docs/grafana-membership.json
// queries is one this package exports, so the dashboard cannot silently
// show nothing after a rename.
func TestGrafanaDashboardUsesExportedNames(t *testing.T) {
	b, err := os.ReadFile("../../docs/grafana-membership.json")
	if err != nil {
		t.Fatal(err)
	}
	m := New()
	// Vectors appear in a scrape only once they have a child.
	m.MembershipChanges.WithLabelValues("add", "applied").Inc()
	m.LearnerLag.WithLabelValues("1").Set(1)
	mfs, err := m.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	exported := map[string]bool{}
	for _, mf := range mfs {
		exported[mf.GetName()] = true
	}
	used := regexp.MustCompile(`\b(?:cadre|etcd)_[a-z_]+`).FindAllString(string(b), -1)
	if len(used) == 0 {
		t.Fatal("the dashboard queries no metric")
	}
	for _, name := range used {
		if !exported[name] {
			t.Errorf("the dashboard queries %s, which Cadre does not export", name)
		}
	}
}
