package e2e

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cadrekv/cadre/tests/framework"
)

type historyJSON struct {
	Records []struct {
		Index   uint64 `json:"index"`
		By      string `json:"by"`
		Action  string `json:"action"`
		Member  string `json:"member"`
		Outcome string `json:"outcome"`
		Verdict string `json:"verdict"`
		Before  struct {
			Voters   []string `json:"voters"`
			Learners []string `json:"learners"`
		} `json:"before"`
		After struct {
			Voters   []string `json:"voters"`
			Learners []string `json:"learners"`
		} `json:"after"`
	} `json:"records"`
}

// TestMembershipHistory: with auth on, the membership audit trail (cadrectl
// member history) records who added and removed a learner, with the raft
// index, the verdict and the configuration before and after, the same on
// every member; a refused change is recorded by the member that refused
// it; the trail needs a user, survives a restart of every member, and a
// snapshot restored into a new cluster keeps it.
func TestMembershipHistory(t *testing.T) {
	framework.SkipUnlessCadre(t)
	c := authCluster(t, 3, framework.Options{})
	root := []string{"--user", "root:" + rootPW}
	history := func(endpoints []string, args ...string) (historyJSON, framework.Result) {
		t.Helper()
		res := framework.RunProcessIn(t, "", 30*time.Second, framework.Cadrectl(t),
			append(append([]string{"--endpoints", strings.Join(endpoints, ",")}, args...), "member", "history", "-w", "json"), nil, nil)
		var h historyJSON
		if res.Code == 0 {
			if err := json.Unmarshal([]byte(res.Stdout), &h); err != nil {
				t.Fatalf("member history output: %v\n%s", err, res)
			}
		}
		return h, res
	}

	peer := membURL(framework.FreePorts(t, 1)[0])
	var added framework.Result
	eventually(t, 20*time.Second, "member add (the strict check waits for 5 s of contact)", func() error {
		added = c.Etcdctl(t, append(root, "member", "add", "visitor", "--learner", "--peer-urls", peer)...)
		if added.Code != 0 {
			if !strings.Contains(added.Stderr, "unhealthy cluster") {
				t.Fatalf("member add: %s", added)
			}
			return fmt.Errorf("%s", added.Stderr)
		}
		return nil
	})
	// The same peer URL again: refused (and recorded by that member).
	if res := c.EtcdctlAt(t, []string{c.Members[0].Endpoint()}, "", append(root, "member", "add", "again", "--peer-urls", peer)...); res.Code == 0 {
		t.Fatalf("member add with a peer URL in use succeeded: %s", res)
	}
	id := ""
	for _, l := range strings.Split(added.Stdout, "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "Member" {
			id = f[1]
		}
	}
	if res := c.Etcdctl(t, append(root, "member", "remove", id)...); res.Code != 0 {
		t.Fatalf("member remove: %s", res)
	}

	if _, res := history(c.Endpoints()); res.Code == 0 {
		t.Fatalf("member history without a user succeeded: %s", res)
	}
	// check finds the learner's add and remove by root, and the refusal
	// where it must be (the member that refused it; other members may or
	// may not have refused it too, depending on who judged).
	check := func(h historyJSON, where string, wantRefusal bool) {
		t.Helper()
		var add, remove, refused bool
		for _, r := range h.Records {
			switch {
			case r.Action == "add-learner" && r.Index > 0 && r.By == "root" && strings.TrimLeft(r.Member, "0") == id && len(r.After.Learners) == 1 && r.Outcome == "applied" && r.Verdict != "":
				add = true
			case r.Action == "remove" && r.Index > 0 && r.By == "root" && len(r.Before.Learners) == 1 && len(r.After.Learners) == 0 && r.Outcome == "applied":
				remove = true
			case r.Index == 0 && r.Action == "add" && strings.HasPrefix(r.Outcome, "refused: ") && r.By == "root":
				refused = true
			}
		}
		if !add || !remove || (wantRefusal && !refused) {
			t.Fatalf("%s: trail %+v; want the learner's add and remove by root (and the refusal: %v)", where, h.Records, wantRefusal)
		}
	}
	h, _ := history([]string{c.Members[0].Endpoint()}, root...)
	check(h, "member that refused", true)
	h, _ = history([]string{c.Members[1].Endpoint()}, root...)
	check(h, "another member", false)

	c.RestartAll(t)
	h, _ = history(c.Endpoints(), root...)
	check(h, "after restarting every member", false)

	file := filepath.Join(t.TempDir(), "snap.db")
	if res := framework.RunProcess(t, framework.Cadrectl(t), append(append([]string{"--endpoints", c.Members[0].Endpoint()}, root...), "snapshot", "save", file), nil); res.Code != 0 {
		t.Fatalf("snapshot save: %s", res)
	}
	procs, _ := restoreCluster(t, file, 1)
	h, _ = history([]string{procs[0].Endpoint()}, root...)
	check(h, "restored from a snapshot", false)
}
