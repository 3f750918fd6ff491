package e2e

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cadrekv/cadre/tests/framework"
	"github.com/cadrekv/cadre/tests/lincheck"
)

// startJoiner starts a member with `cadre --join` (and, with replace, the
// ID of the voter it replaces) through the tracked members' client URLs.
func (c *linCluster) startJoiner(name string, replace uint64) *linNode {
	c.t.Helper()
	n := &linNode{name: name, client: linFreeURL(c.t), peer: linFreeURL(c.t)}
	dir := c.t.TempDir()
	args := []string{
		"--name", name, "--data-dir", filepath.Join(dir, name+".data"),
		"--listen-client-urls", n.client, "--advertise-client-urls", n.client,
		"--listen-peer-urls", n.peer, "--initial-advertise-peer-urls", n.peer,
		"--join", strings.Join(c.endpoints(), ","),
	}
	if replace != 0 {
		args = append(args, "--replace", fmt.Sprintf("%016x", replace))
	}
	n.proc = framework.StartServer(c.t, framework.ServerSpec{Name: name, Dir: dir, Args: args, ClientURL: n.client, DataDir: filepath.Join(dir, name+".data")})
	return n
}

// waitVoting waits until n is a started voting member and records its ID.
func (c *linCluster) waitVoting(n *linNode) {
	c.t.Helper()
	c.retry(n.name+" becoming a voting member", joinBudget, func(ctx context.Context) error {
		cli := linDial(c.t, c.endpoints()...)
		defer cli.Close()
		ms, err := linMembers(ctx, cli)
		if err != nil {
			return err
		}
		for _, m := range ms {
			if m.name == n.name && !m.learner {
				n.id = m.id
				return nil
			}
		}
		return fmt.Errorf("not yet: %v", ms)
	})
}

// replacedBy waits for old's process to exit with code 3 (a replaced
// member exits as a removed one does) and swaps n in for it.
func (c *linCluster) replacedBy(old, n *linNode) {
	c.t.Helper()
	code, exited := old.proc.Wait(joinBudget)
	if !exited || code != 3 {
		c.t.Fatalf("replaced member %s: exited %v with code %d, want 3\n%s", old.name, exited, code, old.proc.LogTail(20))
	}
	c.drop(old)
	c.waitVoting(n)
	c.nodes = append(c.nodes, n)
}

// TestLinearizableDuringJoinAndReplace runs the linearizability traffic of
// TestLinearizableDuringReconfiguration while Cadre's own membership
// workflows change the cluster: a follower is replaced with `cadrectl
// member replace` (the new member started with the settings it printed),
// the leader is replaced with `cadre --join --replace`, and a fourth member
// joins with `cadre --join`. Each replace is one joint-consensus change.
// The history must be linearizable and the members must agree at the end.
func TestLinearizableDuringJoinAndReplace(t *testing.T) {
	framework.SkipUnlessCadre(t)
	lc, clis, rebalance, tr := startLinTraffic(t, framework.NewCluster(t, 3, framework.Options{}))
	time.Sleep(linWarmup)

	lc.step("cadrectl member replace a follower", func() {
		old := lc.follower(lc.leader())
		n := &linNode{name: "infra4", client: linFreeURL(t), peer: linFreeURL(t)}
		var out string
		lc.retry("member replace "+old.name, linStepBudget, func(ctx context.Context) error {
			res := framework.RunProcessIn(t, "", linRPCTimeout+5*time.Second, framework.Cadrectl(t),
				[]string{"--endpoints", strings.Join(lc.endpoints(), ","), "member", "replace", fmt.Sprintf("%016x", old.id), "--name", n.name, "--peer-urls", n.peer}, nil, nil)
			if res.Code != 0 {
				return fmt.Errorf("%s", res)
			}
			out = res.Stdout
			return nil
		})
		var env []string
		for _, kv := range cadreEnvLine.FindAllStringSubmatch(out, -1) {
			env = append(env, "ETCD_"+kv[1]+"="+kv[2])
		}
		dir := t.TempDir()
		n.proc = framework.StartServer(t, framework.ServerSpec{Name: n.name, Dir: dir, Env: env, ClientURL: n.client, DataDir: filepath.Join(dir, "data"),
			Args: membJoinFlags(filepath.Join(dir, "data"), n.peer, n.client)})
		lc.replacedBy(old, n)
		rebalance()
	})
	time.Sleep(linPause)
	lc.step("cadre --join --replace the leader", func() {
		old := lc.leader()
		n := lc.startJoiner("infra5", old.id)
		lc.replacedBy(old, n)
		rebalance()
	})
	time.Sleep(linPause)
	lc.step("cadre --join a fourth member", func() {
		n := lc.startJoiner("infra6", 0)
		lc.waitVoting(n)
		lc.nodes = append(lc.nodes, n)
		rebalance()
	})
	time.Sleep(linTail)
	tr.Stop()

	linFinalOps(t, lc, len(clis))
	linCheckAgreement(t, lc)
	ok, failedReads, unknown := tr.Summary()
	t.Logf("traffic: %d ok, %d failed reads dropped, %d writes of unknown outcome", ok, failedReads, unknown)
	if ok < linMinOK {
		t.Fatalf("only %d successful operations, want >= %d", ok, linMinOK)
	}
	lincheck.Check(t, lc.rec.History(), lc.notes)
}
