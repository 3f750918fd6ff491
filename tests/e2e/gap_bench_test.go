package e2e

import (
	"context"
	"fmt"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/cadrekv/cadre/tests/framework"
)

// BenchmarkLeaderRemovalWriteGap: one client writes sequentially with a
// short per-request timeout while the current leader is removed with
// `member remove`; the longest gap between two successful writes is
// reported (Cadre hands leadership over first; etcd waits an election).
// Run: go test -run '^$' -bench LeaderRemovalWriteGap -benchtime 1x ./tests/e2e/
func BenchmarkLeaderRemovalWriteGap(b *testing.B) {
	for n := 0; n < b.N; n++ {
		b.StopTimer()
		c := framework.NewCluster(b, 3, framework.Options{})
		lead := c.Leader(b)
		var others []string
		for i, m := range c.Members {
			if i != lead {
				others = append(others, m.Endpoint())
			}
		}
		writer := framework.NewClient(b, others...)
		admin := framework.NewClient(b, others...)
		ml, err := admin.MemberList(context.Background())
		if err != nil {
			b.Fatal(err)
		}
		var leadID uint64
		for _, m := range ml.Members {
			if m.Name == c.Members[lead].Name {
				leadID = m.ID
			}
		}
		// The strict check needs 5 s of contact before it allows a removal.
		time.Sleep(5500 * time.Millisecond)
		b.StartTimer()

		done := make(chan time.Duration)
		stop := make(chan struct{})
		go func() {
			var longest time.Duration
			last := time.Now()
			for i := 0; ; i++ {
				select {
				case <-stop:
					done <- longest
					return
				default:
				}
				ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
				_, err := writer.Put(ctx, fmt.Sprintf("/gap/%d", i), "v")
				cancel()
				if err == nil {
					if d := time.Since(last); d > longest {
						longest = d
					}
					last = time.Now()
				}
			}
		}()
		time.Sleep(time.Second)
		rctx, rcancel := context.WithTimeout(context.Background(), 10*time.Second)
		_, err = admin.MemberRemove(rctx, leadID)
		rcancel()
		if err != nil {
			b.Fatalf("removing the leader: %v", err)
		}
		time.Sleep(2 * time.Second)
		close(stop)
		longest := <-done
		b.StopTimer()
		b.ReportMetric(float64(longest.Microseconds())/1000, "longest-gap-ms")
		b.Logf("longest gap between successful writes while the leader was removed: %v", longest)
		if _, err := writer.Get(context.Background(), "/gap/", clientv3.WithPrefix(), clientv3.WithCountOnly()); err != nil {
			b.Fatalf("cluster after leader removal: %v", err)
		}
		c.Close()
		b.StartTimer()
	}
}
