package e2e

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/cadrekv/cadre/tests/framework"
)

// TestAutoCompaction checks both automatic compaction modes free old
// history on their own, and keep what the retention promises.
func TestAutoCompaction(t *testing.T) {
	// etcd checks revision-mode retention only every 5 minutes; Cadre's
	// cadence (documented in internal/server/compact.go) is what is tested.
	framework.SkipUnlessCadre(t)
	for _, tc := range []struct {
		mode, retention string
		keepRevs        int64 // revisions that must stay readable right after writing
	}{
		{"revision", "20", 20},
		{"periodic", "2s", 0},
	} {
		t.Run(tc.mode, func(t *testing.T) {
			c := framework.NewCluster(t, 1, framework.Options{ExtraFlags: []string{
				"--auto-compaction-mode", tc.mode, "--auto-compaction-retention", tc.retention}})
			cli := c.Client(t)
			ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
			defer cancel()
			var last int64
			for i := 0; i < 100; i++ {
				resp, err := cli.Put(ctx, fmt.Sprintf("k%03d", i), "v")
				if err != nil {
					t.Fatal(err)
				}
				last = resp.Header.Revision
			}
			if tc.keepRevs > 0 {
				if _, err := cli.Get(ctx, "k", clientv3.WithPrefix(), clientv3.WithRev(last-tc.keepRevs+1)); err != nil {
					t.Fatalf("revision %d is within the retention but unreadable: %v", last-tc.keepRevs+1, err)
				}
			}
			deadline := time.Now().Add(30 * time.Second)
			for {
				_, err := cli.Get(ctx, "k000", clientv3.WithRev(2))
				if errors.Is(err, rpctypes.ErrCompacted) {
					break
				}
				if err != nil {
					t.Fatalf("get at revision 2: %v", err)
				}
				if time.Now().After(deadline) {
					t.Fatalf("revision 2 still readable 30s after writing: automatic compaction (%s %s) did not run", tc.mode, tc.retention)
				}
				time.Sleep(200 * time.Millisecond)
			}
			// The current data is untouched.
			resp, err := cli.Get(ctx, "k", clientv3.WithPrefix(), clientv3.WithCountOnly())
			if err != nil || resp.Count != 100 {
				t.Fatalf("after compaction: count %v, err %v", resp, err)
			}
		})
	}
}
