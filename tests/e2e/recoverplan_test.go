package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/cadrekv/cadre/tests/framework"
)

// TestRecoverPlanPicksFreshest: two survivors of a cluster that lost its
// quorum stopped at different indexes; `cadrectl recover plan` reads both
// (they answer Status without a leader) and names the fresher one.
func TestRecoverPlanPicksFreshest(t *testing.T) {
	framework.SkipUnlessCadre(t)
	c := framework.NewCluster(t, 3, framework.Options{})
	a, b, cm := c.Members[0], c.Members[1], c.Members[2]
	cli := c.Client(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if _, err := cli.Put(ctx, "/plan/early", "x"); err != nil {
		t.Fatal(err)
	}
	a.Kill(t) // infra1 stops behind
	two := framework.NewClient(t, b.Endpoint(), cm.Endpoint())
	for i := 0; i < 30; i++ {
		// The first writes may meet the election that follows the kill.
		var err error
		for try := 0; try < 10; try++ {
			pctx, pcancel := context.WithTimeout(ctx, 3*time.Second)
			_, err = two.Put(pctx, fmt.Sprintf("/plan/%02d", i), "v")
			pcancel()
			if err == nil {
				break
			}
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	b.Kill(t)
	cm.Kill(t)

	// Bring back the two survivors so that they cannot form a quorum: infra3
	// listens on a new peer port that infra1 does not know.
	ports := framework.FreePorts(t, 1)
	cm.SetArgs(t, framework.WithFlag(cm.Args(), "listen-peer-urls", membURL(ports[0])))
	cm.Start(t)
	a.Start(t)
	for _, m := range []*framework.Member{a, cm} {
		waitStatus(t, m.Endpoint(), 20*time.Second)
	}

	r := framework.RunProcess(t, framework.Cadrectl(t), []string{"--endpoints", a.Endpoint() + "," + cm.Endpoint(), "recover", "plan"}, nil)
	if r.Code != 0 {
		t.Fatalf("recover plan: %s", r)
	}
	out := r.Stdout
	if !strings.Contains(out, "Freshest: infra3") {
		t.Fatalf("recover plan did not pick infra3 (which holds 30 more writes):\n%s", out)
	}
	for _, want := range []string{"--force-new-cluster", "snapshot save", "snapshot restore", "member add infra1", "member add infra2"} {
		if !strings.Contains(out, want) {
			t.Errorf("plan lacks %q:\n%s", want, out)
		}
	}
}

// waitStatus waits until the member answers Maintenance.Status, which it
// does even without a leader.
func waitStatus(t *testing.T, endpoint string, d time.Duration) {
	t.Helper()
	ep := strings.TrimPrefix(endpoint, "http://")
	cli := framework.NewClient(t, ep)
	deadline := time.Now().Add(d)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_, err := cli.Status(ctx, ep)
		cancel()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s does not answer Status within %v: %v", ep, d, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
