package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/cadrekv/cadre/tests/framework"
)

// TestAutopilot: the replicated autopilot settings (cadrectl autopilot
// get/set) are off by default, refused with a clear error when wrong,
// read the same from every member; with promote-learners on, a learner
// added the classic way (the real etcdctl, then started from the printed
// settings) is promoted by the leader once caught up for promote-after;
// with unstarted-ttl set, a member added but never started shows its wait
// in `cadrectl member list -w table` and is removed after the TTL.
func TestAutopilot(t *testing.T) {
	framework.SkipUnlessCadre(t)
	c := framework.NewCluster(t, 3, framework.Options{})
	ctl := func(args ...string) framework.Result {
		t.Helper()
		return framework.RunProcessIn(t, "", 30*time.Second, framework.Cadrectl(t),
			append([]string{"--endpoints", strings.Join(c.Endpoints(), ",")}, args...), nil, nil)
	}
	res := ctl("autopilot", "get")
	if res.Code != 0 || !strings.Contains(res.Stdout, "promote-learners=false") || !strings.Contains(res.Stdout, "unstarted-ttl=0 (off)") {
		t.Fatalf("autopilot get on a new cluster: %s", res)
	}
	for _, bad := range []struct{ arg, want string }{
		{"promote-learner=true", `unknown autopilot setting "promote-learner"`},
		{"promote-after=10ms", "expected a duration from 1s"},
		{"promote-learners=yes please", "expected true or false"},
	} {
		res := ctl("autopilot", "set", bad.arg)
		if res.Code == 0 || !strings.Contains(res.Stderr, bad.want) {
			t.Errorf("autopilot set %s: want a refusal naming %q; got %s", bad.arg, bad.want, res)
		}
	}
	if res := ctl("autopilot", "set", "promote-learners=true", "promote-after=2s", "unstarted-ttl=4s"); res.Code != 0 {
		t.Fatalf("autopilot set: %s", res)
	}
	// Every member reads the replicated settings.
	for _, m := range c.Members {
		res := framework.RunProcessIn(t, "", 30*time.Second, framework.Cadrectl(t), []string{"--endpoints", m.Endpoint(), "autopilot", "get", "-w", "json"}, nil, nil)
		if res.Code != 0 || !strings.Contains(res.Stdout, `"promoteLearners":true`) || !strings.Contains(res.Stdout, `"unstartedTTL":"4s"`) {
			t.Fatalf("autopilot get on %s: %s", m.Name, res)
		}
	}

	// A learner added with the real etcdctl and started as printed.
	ports := framework.FreePorts(t, 2)
	peer := membURL(ports[0])
	added := membAdd(t, c, "auto4", "--learner", "--peer-urls", peer)
	learner := c.AddMemberProcess(t, "auto4", membJoinFlags(c.Dir()+"/auto4.data", peer, membURL(ports[1])), added.EnvList())
	learner.WaitHealthy(t, 30*time.Second)
	cli := framework.NewClient(t, c.Endpoints()...)
	eventually(t, 30*time.Second, "autopilot promoting the learner", func() error {
		for _, line := range membList(t, cli) {
			if strings.Contains(line, "auto4") && strings.HasSuffix(line, "false") {
				return nil
			}
		}
		return fmt.Errorf("auto4 still a learner: %q", membList(t, cli))
	})
	promotedBy := ""
	for _, m := range c.Members {
		if m.LogContains("autopilot promoted a learner") {
			promotedBy = m.Name
		}
	}
	if promotedBy == "" {
		t.Error("no member logged the promotion")
	}
	c.Append(learner)

	// A member added but never started: its wait shows, then it goes.
	ghostURL := membURL(framework.FreePorts(t, 1)[0])
	membAdd(t, c, "ghost", "--peer-urls", ghostURL)
	res = ctl("member", "list", "-w", "table")
	if res.Code != 0 || !strings.Contains(res.Stdout, "unstarted, waiting") {
		t.Errorf("member list -w table with an unstarted member: %s", res)
	}
	eventually(t, 30*time.Second, "autopilot removing the unstarted member", func() error {
		if l := strings.Join(membList(t, cli), "\n"); strings.Contains(l, ghostURL) {
			return fmt.Errorf("still a member: %s", l)
		}
		return nil
	})
	removedBy := false
	for _, m := range c.Members {
		removedBy = removedBy || m.LogContains("autopilot removed a member that never started")
	}
	if !removedBy {
		t.Error("no member logged the removal of the unstarted member")
	}

	// The membership metrics count what happened, on any member (the
	// gauges refresh every second).
	eventually(t, 10*time.Second, "membership metrics", func() error {
		body := httpGet(t, c.Members[0].Endpoint()+"/metrics", 200)
		for _, want := range []string{
			`cadre_membership_changes_total{action="add-learner",outcome="applied"} 1`,
			`cadre_membership_changes_total{action="promote",outcome="applied"} 1`,
			`cadre_membership_changes_total{action="remove",outcome="applied"} 1`,
			`cadre_membership_unstarted_members 0`,
			`cadre_membership_last_change_index`,
		} {
			if !strings.Contains(body, want) {
				return fmt.Errorf("/metrics lacks %q", want)
			}
		}
		return nil
	})
}
