package e2e

import (
	"encoding/json"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/cadrekv/cadre/tests/framework"
)

// ctl runs etcdctl against all members and fails the test unless it exits 0.
func ctl(t *testing.T, c *framework.Cluster, args ...string) string {
	t.Helper()
	res := c.Etcdctl(t, args...)
	if res.Code != 0 || res.TimedOut {
		t.Fatalf("etcdctl %q: %s", args, res)
	}
	return res.Stdout
}

// lines splits output into its non-empty lines.
func lines(s string) []string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			out = append(out, l)
		}
	}
	return out
}

// parseTable parses etcdctl's -w table output: the header cells and the
// cells of each row.
func parseTable(t *testing.T, out string) (header []string, rows [][]string) {
	t.Helper()
	for _, l := range strings.Split(out, "\n") {
		l = strings.TrimSpace(l)
		if !strings.HasPrefix(l, "│") {
			continue
		}
		parts := strings.Split(strings.Trim(l, "│"), "│")
		cells := make([]string, len(parts))
		for i, p := range parts {
			cells[i] = strings.TrimSpace(p)
		}
		if header == nil {
			header = cells
			continue
		}
		rows = append(rows, cells)
	}
	if header == nil {
		t.Fatalf("no table in etcdctl output:\n%s", out)
	}
	return header, rows
}

func column(t *testing.T, header []string, name string) int {
	t.Helper()
	i := slices.Index(header, name)
	if i < 0 {
		t.Fatalf("table has no %q column: %q", name, header)
	}
	return i
}

type getJSON struct {
	Header struct {
		ClusterID uint64 `json:"cluster_id"`
		MemberID  uint64 `json:"member_id"`
		Revision  int64  `json:"revision"`
	} `json:"header"`
	Kvs []struct {
		Key         []byte `json:"key"`
		Value       []byte `json:"value"`
		ModRevision int64  `json:"mod_revision"`
		Version     int64  `json:"version"`
	} `json:"kvs"`
	Count int64 `json:"count"`
}

// TestEtcdctlCompat drives the cluster with the real etcdctl v3.7.3 and
// checks its output, as users and scripts would read it.
func TestEtcdctlCompat(t *testing.T) {
	t.Parallel()
	c := framework.NewCluster(t, 3, framework.Options{})

	for _, kv := range [][2]string{{"/e/a", "1"}, {"/e/b", "2"}, {"/e/c", "3"}, {"/e/d", "4"}} {
		if out := ctl(t, c, "put", kv[0], kv[1]); strings.TrimSpace(out) != "OK" {
			t.Fatalf("put %s: %q, want OK", kv[0], out)
		}
	}
	var first getJSON
	if err := json.Unmarshal([]byte(ctl(t, c, "get", "/e/a", "-w", "json")), &first); err != nil {
		t.Fatalf("get -w json: %v", err)
	}
	if len(first.Kvs) != 1 || string(first.Kvs[0].Key) != "/e/a" || string(first.Kvs[0].Value) != "1" || first.Count != 1 ||
		first.Header.ClusterID == 0 || first.Header.MemberID == 0 || first.Kvs[0].Version != 1 {
		t.Fatalf("get -w json: %+v", first)
	}
	revA1 := first.Kvs[0].ModRevision
	if first.Header.Revision != revA1+3 {
		t.Fatalf("get -w json: header revision %d, want %d (3 puts after /e/a)", first.Header.Revision, revA1+3)
	}
	ctl(t, c, "put", "/e/a", "1b")

	getCases := []struct {
		args []string
		want []string
	}{
		{[]string{"get", "/e/a"}, []string{"/e/a", "1b"}},
		{[]string{"get", "/e/", "--prefix"}, []string{"/e/a", "1b", "/e/b", "2", "/e/c", "3", "/e/d", "4"}},
		{[]string{"get", "/e/c", "--from-key"}, []string{"/e/c", "3", "/e/d", "4"}},
		{[]string{"get", "/e/", "--prefix", "--limit", "2"}, []string{"/e/a", "1b", "/e/b", "2"}},
		{[]string{"get", "/e/a", "--rev", strconv.FormatInt(revA1, 10)}, []string{"/e/a", "1"}},
		{[]string{"get", "/e/", "--prefix", "--rev", strconv.FormatInt(revA1+1, 10)}, []string{"/e/a", "1", "/e/b", "2"}},
		{[]string{"get", "/e/", "--prefix", "--keys-only"}, []string{"/e/a", "/e/b", "/e/c", "/e/d"}},
		{[]string{"get", "/e/", "--prefix", "--print-value-only"}, []string{"1b", "2", "3", "4"}},
		{[]string{"get", "/e/", "--prefix", "--order", "DESCEND", "--sort-by", "KEY", "--keys-only"}, []string{"/e/d", "/e/c", "/e/b", "/e/a"}},
		{[]string{"get", "/e/", "--prefix", "--order", "DESCEND", "--sort-by", "MODIFY", "--limit", "1"}, []string{"/e/a", "1b"}},
		{[]string{"get", "/e/", "--prefix", "--order", "ASCEND", "--sort-by", "VALUE", "--print-value-only"}, []string{"1b", "2", "3", "4"}},
		{[]string{"get", "/e/b", "--consistency", "s"}, []string{"/e/b", "2"}},
		{[]string{"get", "/e/missing"}, nil},
	}
	for _, tc := range getCases {
		if got := lines(ctl(t, c, tc.args...)); !slices.Equal(got, tc.want) {
			t.Errorf("etcdctl %q: %q, want %q", tc.args, got, tc.want)
		}
	}
	var prefixJSON getJSON
	if err := json.Unmarshal([]byte(ctl(t, c, "get", "/e/", "--prefix", "--limit", "3", "-w", "json")), &prefixJSON); err != nil {
		t.Fatal(err)
	}
	if prefixJSON.Count != 4 || len(prefixJSON.Kvs) != 3 || prefixJSON.Kvs[0].Version != 2 || string(prefixJSON.Kvs[0].Value) != "1b" ||
		prefixJSON.Header.ClusterID != first.Header.ClusterID {
		t.Errorf("get --prefix --limit 3 -w json: %+v", prefixJSON)
	}

	// del --prev-kv prints the count, then the deleted pairs.
	if got, want := lines(ctl(t, c, "del", "/e/a", "--prev-kv")), []string{"1", "/e/a", "1b"}; !slices.Equal(got, want) {
		t.Errorf("del --prev-kv: %q, want %q", got, want)
	}
	if got := lines(ctl(t, c, "del", "/e/", "--prefix")); !slices.Equal(got, []string{"3"}) {
		t.Errorf("del --prefix: %q, want [3]", got)
	}
	if got := lines(ctl(t, c, "get", "/e/", "--prefix")); len(got) != 0 {
		t.Errorf("after del --prefix: %q", got)
	}

	// txn from stdin: compares, blank line, success ops, blank line, failure ops.
	ctl(t, c, "put", "/t/k", "v1")
	for _, tc := range []struct {
		cmp, want, res string
	}{
		{`value("/t/k") = "v1"`, "SUCCESS", "yes"},
		{`value("/t/k") = "zz"`, "FAILURE", "no"},
	} {
		res := c.EtcdctlStdin(t, tc.cmp+"\n\nput /t/res yes\n\nput /t/res no\n\n", "txn")
		if res.Code != 0 {
			t.Fatalf("txn: %s", res)
		}
		if got := lines(res.Stdout); len(got) < 2 || got[0] != tc.want || got[1] != "OK" {
			t.Errorf("txn %s: %q, want %s then OK", tc.cmp, got, tc.want)
		}
		if got := lines(ctl(t, c, "get", "/t/res", "--print-value-only")); !slices.Equal(got, []string{tc.res}) {
			t.Errorf("after txn %s: /t/res = %q, want %q", tc.cmp, got, tc.res)
		}
	}

	// endpoint status: one row per endpoint, exactly one leader.
	header, rows := parseTable(t, ctl(t, c, "endpoint", "status", "-w", "table"))
	ep, isLeader, id := column(t, header, "ENDPOINT"), column(t, header, "IS LEADER"), column(t, header, "ID")
	if len(rows) != 3 {
		t.Fatalf("endpoint status: %d rows, want 3: %q", len(rows), rows)
	}
	leaders := 0
	var endpoints, statusIDs []string
	for _, r := range rows {
		endpoints = append(endpoints, r[ep])
		statusIDs = append(statusIDs, r[id])
		switch r[isLeader] {
		case "true":
			leaders++
		case "false":
		default:
			t.Errorf("endpoint status: IS LEADER %q", r[isLeader])
		}
	}
	if leaders != 1 {
		t.Errorf("endpoint status: %d leaders, want 1: %q", leaders, rows)
	}
	if !slices.Equal(endpoints, c.Endpoints()) {
		t.Errorf("endpoint status endpoints %q, want %q", endpoints, c.Endpoints())
	}

	health := c.Etcdctl(t, "endpoint", "health")
	if health.Code != 0 {
		t.Fatalf("endpoint health: %s", health)
	}
	healthy := 0
	for _, l := range lines(health.Stdout + "\n" + health.Stderr) {
		if strings.Contains(l, " is healthy") {
			healthy++
		}
	}
	if healthy != 3 {
		t.Errorf("endpoint health: %d healthy, want 3:\n%s", healthy, health)
	}

	checkMemberList(t, c, statusIDs, first.Header.ClusterID)

	// Compaction makes older revisions unreadable with a clear error.
	ctl(t, c, "put", "/c/k", "1")
	ctl(t, c, "put", "/c/k", "2")
	var cur getJSON
	if err := json.Unmarshal([]byte(ctl(t, c, "get", "/c/k", "-w", "json")), &cur); err != nil {
		t.Fatal(err)
	}
	rev := cur.Header.Revision
	if out := ctl(t, c, "compaction", strconv.FormatInt(rev, 10)); strings.TrimSpace(out) != "compacted revision "+strconv.FormatInt(rev, 10) {
		t.Errorf("compaction: %q", out)
	}
	res := c.Etcdctl(t, "get", "/c/k", "--rev", strconv.FormatInt(rev-1, 10))
	if res.Code == 0 || !strings.Contains(res.Stderr, "required revision has been compacted") {
		t.Errorf("get at a compacted revision: %s", res)
	}
	if got := lines(ctl(t, c, "get", "/c/k", "--rev", strconv.FormatInt(rev, 10), "--print-value-only")); !slices.Equal(got, []string{"2"}) {
		t.Errorf("get at the compaction revision: %q", got)
	}
}

type memberListJSON struct {
	Header struct {
		ClusterID uint64 `json:"cluster_id"`
		MemberID  uint64 `json:"member_id"`
	} `json:"header"`
	Members []struct {
		ID         uint64   `json:"ID"`
		Name       string   `json:"name"`
		PeerURLs   []string `json:"peerURLs"`
		ClientURLs []string `json:"clientURLs"`
		IsLearner  bool     `json:"isLearner"`
	} `json:"members"`
}

func checkMemberList(t *testing.T, c *framework.Cluster, statusIDs []string, clusterID uint64) {
	t.Helper()
	header, rows := parseTable(t, ctl(t, c, "member", "list", "-w", "table"))
	idCol, status, name := column(t, header, "ID"), column(t, header, "STATUS"), column(t, header, "NAME")
	peer, client, learner := column(t, header, "PEER ADDRS"), column(t, header, "CLIENT ADDRS"), column(t, header, "IS LEARNER")
	if len(rows) != 3 {
		t.Fatalf("member list: %d rows, want 3: %q", len(rows), rows)
	}
	byName := map[string][]string{}
	var tableIDs []string
	for _, r := range rows {
		byName[r[name]] = r
		tableIDs = append(tableIDs, r[idCol])
	}
	for _, m := range c.Members {
		r, ok := byName[m.Name]
		if !ok {
			t.Errorf("member list: no row for %s: %q", m.Name, rows)
			continue
		}
		if r[status] != "started" || r[peer] != m.PeerURL() || r[client] != m.Endpoint() || r[learner] != "false" {
			t.Errorf("member list row of %s: %q, want started, %s, %s, false", m.Name, r, m.PeerURL(), m.Endpoint())
		}
	}
	// The IDs of endpoint status are the members' IDs.
	if !sameSet(tableIDs, statusIDs) {
		t.Errorf("member list IDs %q != endpoint status IDs %q", tableIDs, statusIDs)
	}

	var ml memberListJSON
	if err := json.Unmarshal([]byte(ctl(t, c, "member", "list", "-w", "json")), &ml); err != nil {
		t.Fatalf("member list -w json: %v", err)
	}
	if ml.Header.ClusterID == 0 || ml.Header.ClusterID != clusterID {
		t.Errorf("member list -w json: cluster_id %d, want %d", ml.Header.ClusterID, clusterID)
	}
	if len(ml.Members) != 3 {
		t.Fatalf("member list -w json: %d members, want 3", len(ml.Members))
	}
	var jsonIDs []string
	for _, jm := range ml.Members {
		jsonIDs = append(jsonIDs, strconv.FormatUint(jm.ID, 16))
		r, ok := byName[jm.Name]
		if !ok || !slices.Equal(jm.PeerURLs, []string{r[peer]}) || !slices.Equal(jm.ClientURLs, []string{r[client]}) || jm.IsLearner {
			t.Errorf("member list -w json: %+v does not match table row %q", jm, r)
		}
	}
	if !sameSet(jsonIDs, tableIDs) {
		t.Errorf("member list -w json IDs %q != table IDs %q", jsonIDs, tableIDs)
	}
}

func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}
