package e2e

import (
	"context"
	"fmt"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/cadrekv/cadre/tests/framework"
)

// TestLearnerCatchesUpThroughSnapshot: the leader's log is compacted past
// what a new learner needs, so the learner must catch up from a snapshot of
// the backend (whose configuration includes the learner), then be promoted.
func TestLearnerCatchesUpThroughSnapshot(t *testing.T) {
	c := framework.NewCluster(t, 3, framework.Options{ExtraFlags: []string{"--snapshot-count", "100", "--experimental-snapshot-catchup-entries", "50"}})
	cli := c.Client(t)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	for i := 0; i < 400; i++ {
		if _, err := cli.Put(ctx, fmt.Sprintf("/ls/%03d", i), "v"); err != nil {
			t.Fatal(err)
		}
	}
	l, add := addAndStart(t, ctx, c, cli, "learner1", true)
	eventually(t, 30*time.Second, "learner promoted", func() error {
		_, err := cli.MemberPromote(ctx, add.Member.ID)
		return err
	})
	got, err := framework.NewClient(t, l.Endpoint()).Get(ctx, "/ls/", clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil || got.Count != 400 {
		t.Fatalf("promoted learner holds %v keys (err %v), want 400", got, err)
	}
	if framework.IsCadre() && !l.LogContains("installed snapshot") {
		t.Fatalf("the learner did not catch up through a snapshot; the test did not test what it says")
	}
}
