package e2e

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/cadrekv/cadre/tests/framework"
	"github.com/cadrekv/cadre/tests/lincheck"
	clientv3 "go.etcd.io/etcd/client/v3"
)

const (
	linWarmup   = 1500 * time.Millisecond // traffic before the first step
	linPause    = time.Second             // traffic between two steps
	linTail     = 1500 * time.Millisecond // traffic after the last step
	linMinOK    = 300                     // successful ops a run must have
	linMinAfter = 10                      // successful ops after the leader's removal
)

// TestLinearizableDuringReconfiguration runs 8 clients (2 pinned to each of
// 3 members, 2 balanced) doing Put, linearizable Get and compare-and-swap on
// 5 keys while the membership changes step by step: a learner is added,
// caught up and promoted; a follower's peer URL is changed and the follower
// restarted on it; a follower is removed; the leader is removed. The history
// must be linearizable (porcupine, see lincheck_model_test.go), the cluster
// must keep serving, and the remaining members must agree at the end.
func TestLinearizableDuringReconfiguration(t *testing.T) {
	began := time.Now()
	lc, clis, rebalance, tr := startLinTraffic(t, framework.NewCluster(t, 3, framework.Options{}))
	time.Sleep(linWarmup)

	var learner, moved *linNode
	lc.step("add learner infra4, catch up, promote", func() {
		learner = lc.addLearner("infra4")
		rebalance()
	})
	time.Sleep(linPause)
	lc.step("move a follower's peer URL and restart it", func() {
		moved = lc.follower(lc.leader(), learner)
		lc.movePeerURL(moved)
	})
	time.Sleep(linPause)
	lc.step("remove a follower", func() {
		leader := lc.leader()
		lc.remove(lc.follower(leader, moved), leader)
		rebalance()
	})
	time.Sleep(linPause)
	lc.step("remove the leader", func() {
		leader := lc.leader()
		lc.remove(leader, lc.follower(leader))
		rebalance()
		t.Logf("new leader after removing %s: %s", leader.name, lc.leader().name)
	})
	time.Sleep(linTail)
	tr.Stop()
	trafficEnd := lc.rec.Now()

	linFinalOps(t, lc, len(clis))
	linCheckAgreement(t, lc)

	history := lc.rec.History()
	ok, failedReads, unknown := tr.Summary()
	afterLast, casOK, casFailed := 0, 0, 0
	for _, op := range history {
		out := op.Output.(lincheck.Output)
		if op.Input.(lincheck.Input).Kind == lincheck.CAS && !out.Unknown {
			if out.Succeeded {
				casOK++
			} else {
				casFailed++
			}
		}
		if op.ClientId < len(clis) && !out.Unknown && op.Call >= lc.notes[len(lc.notes)-1].End {
			afterLast++
		}
	}
	secs := time.Duration(trafficEnd).Seconds()
	t.Logf("traffic: %.1fs, %d ops recorded, %d ok (%.0f/s; cas %d succeeded, %d failed), %d failed reads dropped, %d writes of unknown outcome, %d ok after the last step",
		secs, len(history), ok, float64(ok)/secs, casOK, casFailed, failedReads, unknown, afterLast)
	if ok < linMinOK {
		t.Fatalf("only %d successful operations, want >= %d: the traffic did not exercise the cluster", ok, linMinOK)
	}
	if afterLast < linMinAfter {
		t.Fatalf("only %d successful operations after the leader's removal, want >= %d: the cluster stopped serving", afterLast, linMinAfter)
	}
	lincheck.Check(t, history, lc.notes)
	t.Logf("total test time %v", time.Since(began).Round(time.Millisecond))
}

// linFinalOps does a final successful Put and a linearizable Get of every
// key on every remaining member, all recorded in the history so that
// porcupine checks that acknowledged writes survived.
func linFinalOps(t *testing.T, lc *linCluster, firstID int) {
	t.Helper()
	cli := framework.NewClient(t, lc.endpoints()...)
	final := lincheck.Input{Kind: lincheck.Put, Key: lincheck.Key(0), Value: "final"}
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, err := lc.rec.Do(cli, firstID, final)
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("final put did not succeed within 10s: %v", err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	for i, n := range lc.nodes {
		mc := framework.NewClient(t, n.client)
		for k := range lincheck.KeyCount {
			in := lincheck.Input{Kind: lincheck.Get, Key: lincheck.Key(k)}
			eventually(t, 10*time.Second, "final read of "+in.Key+" on "+n.name, func() error {
				_, err := lc.rec.Do(mc, firstID+1+i, in)
				return err
			})
		}
	}
}

// linCheckAgreement waits until every remaining member reports, from its
// own state (serializable reads), the same revision and the same values.
func linCheckAgreement(t *testing.T, lc *linCluster) {
	t.Helper()
	eventually(t, 10*time.Second, "remaining members agreeing on revision and values", func() error {
		var first string
		for _, n := range lc.nodes {
			cli := linDial(t, n.client)
			ctx, cancel := context.WithTimeout(context.Background(), linRPCTimeout)
			resp, err := cli.Get(ctx, "lin/", clientv3.WithPrefix(), clientv3.WithSerializable())
			cancel()
			cli.Close()
			if err != nil {
				return fmt.Errorf("%s: %w", n.name, err)
			}
			state := fmt.Sprintf("rev %d:", resp.Header.Revision)
			for _, kv := range resp.Kvs {
				state += fmt.Sprintf(" %s=%s@%d", kv.Key, kv.Value, kv.ModRevision)
			}
			if first == "" {
				first = state
				t.Logf("%s: %s", n.name, state)
			} else if state != first {
				return fmt.Errorf("%s has %q, %s has %q", lc.nodes[0].name, first, n.name, state)
			}
		}
		return nil
	})
}

// startLinTraffic tracks the members of cl in a linCluster and starts the
// linearizability traffic: 8 clients, 2 pinned to each member and 2
// balanced over the tracked members (rebalance updates them).
func startLinTraffic(t *testing.T, cl *framework.Cluster) (*linCluster, []*clientv3.Client, func(), *lincheck.Traffic) {
	t.Helper()
	lc := &linCluster{t: t, token: "cadre-e2e", rec: lincheck.NewRecorder()}

	// Probe the Cluster service before any traffic: Cadre may not have it yet.
	probe := linDial(t, cl.Endpoints()...)
	ctx, cancel := context.WithTimeout(context.Background(), linRPCTimeout)
	members, err := linMembers(ctx, probe)
	cancel()
	probe.Close()
	linSkipIfUnimplemented(t, "MemberList", err)
	if err != nil {
		t.Fatalf("MemberList: %v", err)
	}
	for _, m := range cl.Members {
		n := &linNode{name: m.Name, client: m.Endpoint(), peer: m.PeerURL(), proc: m}
		for _, lm := range members {
			if lm.name == m.Name {
				n.id = lm.id
			}
		}
		if n.id == 0 {
			t.Fatalf("member %s not in MemberList %v", m.Name, members)
		}
		lc.nodes = append(lc.nodes, n)
	}

	var clis []*clientv3.Client
	for i := range 6 {
		clis = append(clis, framework.NewClient(t, cl.Members[i%3].Endpoint()))
	}
	balanced := []*clientv3.Client{framework.NewClient(t, cl.Endpoints()...), framework.NewClient(t, cl.Endpoints()...)}
	clis = append(clis, balanced...)
	rebalance := func() {
		for _, b := range balanced {
			b.SetEndpoints(lc.endpoints()...)
		}
	}

	tr := lincheck.StartTraffic(lc.rec, clis)
	t.Cleanup(tr.Stop) // runs before the clients are closed
	return lc, clis, rebalance, tr
}
