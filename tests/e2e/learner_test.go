package e2e

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cadrekv/cadre/tests/framework"
	clientv3 "go.etcd.io/etcd/client/v3"
)

const (
	inSyncErr      = "etcdserver: can only promote a learner member which is in sync with leader"
	learnerRPCErr  = "etcdserver: rpc not supported for learner"
	tooManyLearner = "etcdserver: too many learner members in cluster"
)

// membLoad writes txns transactions of ops puts of size bytes each under
// prefix and returns the last key written.
func membLoad(t *testing.T, cli *clientv3.Client, prefix string, txns, ops, size int) string {
	t.Helper()
	val := strings.Repeat("x", size)
	var last string
	for i := range txns {
		puts := make([]clientv3.Op, ops)
		for j := range ops {
			last = fmt.Sprintf("%s%06d", prefix, i*ops+j)
			puts[j] = clientv3.OpPut(last, val)
		}
		if _, err := cli.Txn(ctxFor(t, 30*time.Second)).Then(puts...).Commit(); err != nil {
			t.Fatalf("load txn %d: %v", i, err)
		}
	}
	return last
}

// TestLearnerPromote: a learner joining a cluster holding ~30 MB is refused
// promotion while it is behind, serves serializable reads but not
// linearizable ones, and is promoted once it has caught up.
func TestLearnerPromote(t *testing.T) {
	c := framework.NewCluster(t, 3, framework.Options{})
	cli := c.Client(t)
	const size = 10 * 1024
	last := membLoad(t, cli, "/learner/", 30, 100, size) // 3000 keys x 10 KiB

	ports := framework.FreePorts(t, 2)
	peer, client := membURL(ports[0]), membURL(ports[1])
	added := membAdd(t, c, "learner1", "--learner", "--peer-urls="+peer)
	if !added.Learner || added.Env["ETCD_NAME"] != "learner1" || added.Env["ETCD_INITIAL_CLUSTER_STATE"] != "existing" {
		t.Fatalf("member add --learner: %+v", added)
	}
	_, err := cli.MemberPromote(ctxFor(t, opTimeout), added.ID)
	membWantErr(t, "promote before the learner runs", err, inSyncErr)

	start := time.Now()
	l := c.AddMemberProcess(t, "learner1", membJoinFlags(filepath.Join(c.Dir(), "learner1.data"), peer, client), added.EnvList())
	_, err = cli.MemberPromote(ctxFor(t, opTimeout), added.ID)
	membWantErr(t, "promote right after the learner started", err, inSyncErr)

	// Caught up: the learner serves the last loaded key itself.
	lcli := framework.NewClient(t, client)
	eventually(t, 60*time.Second, "learner serving the loaded data", func() error {
		r, err := lcli.Get(ctxFor(t, opTimeout), last, clientv3.WithSerializable())
		if err != nil {
			return err
		}
		if len(r.Kvs) != 1 || len(r.Kvs[0].Value) != size {
			return fmt.Errorf("%s: %d kvs", last, len(r.Kvs))
		}
		return nil
	})
	t.Logf("learner caught up after %v", time.Since(start).Round(time.Millisecond))
	_, err = lcli.Get(ctxFor(t, opTimeout), last)
	membWantErr(t, "linearizable read on the learner", err, learnerRPCErr)
	_, err = lcli.Put(ctxFor(t, opTimeout), "/learner/w", "x")
	membWantErr(t, "put on the learner", err, learnerRPCErr)

	// Promote: bounded retries until it is accepted.
	var errs []string
	promoted := false
	for i := 0; i < 300 && time.Since(start) < 60*time.Second; i++ {
		_, err := cli.MemberPromote(ctxFor(t, opTimeout), added.ID)
		if err == nil {
			promoted = true
			break
		}
		if len(errs) == 0 || errs[len(errs)-1] != err.Error() {
			errs = append(errs, err.Error())
		}
		time.Sleep(200 * time.Millisecond)
	}
	if !promoted {
		t.Fatalf("learner not promoted within 60s of its start; errors: %q", errs)
	}
	t.Logf("promoted after %v (refusals in between: %q)", time.Since(start).Round(time.Millisecond), errs)
	c.Append(l)

	resp, err := cli.MemberList(ctxFor(t, opTimeout))
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range resp.Members {
		if m.ID == added.ID && (m.IsLearner || m.Name != "learner1") {
			t.Fatalf("after promote: %+v, want a voter named learner1", m)
		}
	}
	eventually(t, 20*time.Second, "linearizable read on the promoted member", func() error {
		r, err := lcli.Get(ctxFor(t, opTimeout), last, clientv3.WithCountOnly())
		if err == nil && r.Count != 1 {
			return fmt.Errorf("count %d", r.Count)
		}
		return err
	})
}

// TestSecondLearnerRefused: with --max-learners at its default 1, a second
// learner is refused and nothing changes; an unstarted learner cannot be
// promoted.
func TestSecondLearnerRefused(t *testing.T) {
	c := framework.NewCluster(t, 3, framework.Options{})
	cli := c.Client(t)
	ports := framework.FreePorts(t, 2)
	first := membAdd(t, c, "l1", "--learner", "--peer-urls="+membURL(ports[0]))
	if !first.Learner {
		t.Fatalf("member add --learner: %+v", first)
	}
	before := membList(t, cli)
	if len(before) != 4 {
		t.Fatalf("members after adding a learner: %q", before)
	}
	membRefused(t, c, c.Endpoints(), tooManyLearner, "member", "add", "l2", "--learner", "--peer-urls="+membURL(ports[1]))
	membUnchanged(t, cli, "a second learner through etcdctl", before)
	_, err := cli.MemberAddAsLearner(ctxFor(t, opTimeout), []string{membURL(ports[1])})
	membWantErr(t, "MemberAddAsLearner of a second learner", err, tooManyLearner)
	membUnchanged(t, cli, "a second learner through client/v3", before)
	_, err = cli.MemberPromote(ctxFor(t, opTimeout), first.ID)
	membWantErr(t, "promote an unstarted learner", err, inSyncErr)
	membUnchanged(t, cli, "promoting an unstarted learner", before)
}
