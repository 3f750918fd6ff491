package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/cadrekv/cadre/tests/framework"
)

// TestDryRunMatchesRealOutcome runs each membership change twice: first
// `cadrectl member ... --dry-run`, then for real. The dry run's verdict
// (accepted, or the exact error) must be the real outcome.
func TestDryRunMatchesRealOutcome(t *testing.T) {
	framework.SkipUnlessCadre(t)
	c := framework.NewCluster(t, 3, framework.Options{})
	ctl := framework.Cadrectl(t)
	eps := strings.Join(c.Endpoints(), ",")
	run := func(args ...string) framework.Result {
		return framework.RunProcess(t, ctl, append([]string{"--endpoints", eps}, args...), nil)
	}
	ids := map[string]string{}
	cli := c.Client(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	ml, err := cli.MemberList(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range ml.Members {
		ids[m.Name] = fmt.Sprintf("%016x", m.ID)
	}
	ports := framework.FreePorts(t, 3)
	voterURL, learnerURL, learner2URL := membURL(ports[0]), membURL(ports[1]), membURL(ports[2])

	// The strict check counts peers only after 5 s of contact: wait until
	// a harmless add is judged acceptable before comparing anything.
	eventually(t, 20*time.Second, "cluster healthy for the strict check", func() error {
		r := run("member", "add", "probe", "--peer-urls="+voterURL, "--dry-run", "-w", "json")
		if r.Code != 0 {
			return fmt.Errorf("%s", r.Stdout+r.Stderr)
		}
		return nil
	})

	type verdict struct {
		Accepted bool   `json:"accepted"`
		Error    string `json:"error"`
	}
	var learnerID string
	cases := []struct {
		name string
		args []string
		// after runs once the real change succeeded (e.g. to learn an ID).
		after func(out string)
	}{
		{name: "add learner", args: []string{"member", "add", "l1", "--peer-urls=" + learnerURL, "--learner"}, after: func(out string) {
			f := strings.Fields(out)
			if len(f) > 1 {
				learnerID = f[1]
			}
		}},
		{name: "second learner", args: []string{"member", "add", "l2", "--peer-urls=" + learner2URL, "--learner"}},
		{name: "used peer URL", args: []string{"member", "add", "dup", "--peer-urls=" + c.Members[0].PeerURL()}},
		{name: "remove unknown", args: []string{"member", "remove", "00000000000000ab"}},
		{name: "update unknown", args: []string{"member", "update", "00000000000000ab", "--peer-urls=http://127.0.0.1:1"}},
		{name: "promote a voter", args: []string{"member", "promote", ids["infra1"]}},
		{name: "promote an unstarted learner", args: nil},
		{name: "remove the learner", args: nil},
		{name: "update a voter to a used URL", args: []string{"member", "update", ids["infra1"], "--peer-urls=" + c.Members[1].PeerURL()}},
	}
	for _, tc := range cases {
		args := tc.args
		switch tc.name {
		case "promote an unstarted learner":
			args = []string{"member", "promote", learnerID}
		case "remove the learner":
			args = []string{"member", "remove", learnerID}
		}
		dry := run(append(append([]string{}, args...), "--dry-run", "-w", "json")...)
		var v verdict
		if err := json.Unmarshal([]byte(dry.Stdout), &v); err != nil {
			t.Fatalf("%s: dry run output is not a verdict: %s", tc.name, dry)
		}
		real := run(args...)
		realOK := real.Code == 0
		if v.Accepted != realOK {
			t.Errorf("%s: dry run accepted=%v (%q) but the real call %s", tc.name, v.Accepted, v.Error, real)
			continue
		}
		if !realOK && !strings.Contains(real.Stderr, v.Error) {
			t.Errorf("%s: dry run predicted %q, the real call said %q", tc.name, v.Error, real.Stderr)
		}
		if realOK && tc.after != nil {
			tc.after(real.Stdout)
		}
		t.Logf("%s: accepted=%v %s", tc.name, v.Accepted, v.Error)
	}
	if learnerID == "" {
		t.Fatal("the learner add did not report an ID")
	}

	// Quorum safety: with a voter down, adding a voter is refused as an
	// unhealthy cluster, by the dry run and by the real call alike.
	lead := c.Leader(t)
	down := c.Members[(lead+1)%3]
	down.Kill(t)
	time.Sleep(time.Second) // the leader notices the broken connections
	live := strings.Join([]string{c.Members[lead].Endpoint(), c.Members[(lead+2)%3].Endpoint()}, ",")
	args := []string{"--endpoints", live, "member", "add", "v9", "--peer-urls=" + voterURL}
	dry := framework.RunProcess(t, ctl, append(append([]string{}, args...), "--dry-run", "-w", "json"), nil)
	var v verdict
	if err := json.Unmarshal([]byte(dry.Stdout), &v); err != nil || v.Accepted || !strings.Contains(v.Error, "unhealthy cluster") {
		t.Fatalf("dry run with a voter down: %s (%v)", dry, err)
	}
	real := framework.RunProcess(t, ctl, args, nil)
	if real.Code == 0 || !strings.Contains(real.Stderr, v.Error) {
		t.Fatalf("real add with a voter down: %s; dry run predicted %q", real, v.Error)
	}
}
