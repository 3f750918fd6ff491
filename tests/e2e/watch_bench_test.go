package e2e

import (
	"context"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/cadrekv/cadre/tests/framework"
)

// BenchmarkWatchers10k: 10,000 watchers on one member, one stalled
// watcher that never reads, and a steady write rate. It reports the
// member's RSS before and after, and event latency; a stalled watcher must
// not make memory grow without bound (it is bounded per watcher).
// Run: go test -run '^$' -bench Watchers10k -benchtime 1x ./tests/e2e/
func BenchmarkWatchers10k(b *testing.B) {
	c := framework.NewCluster(b, 1, framework.Options{})
	m := c.Members[0]
	cli := framework.NewClient(b, m.Endpoint())
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	const watchers = 10000
	const keys = 100
	var mu sync.Mutex
	putAt := map[string]time.Time{}
	var lat []time.Duration
	wctx := clientv3.WithRequireLeader(ctx)
	var wg sync.WaitGroup
	for i := 0; i < watchers; i++ {
		key := fmt.Sprintf("/w/%03d", i%keys)
		wch := cli.Watch(wctx, key)
		// Only the first watcher of each key measures latency; the others
		// just have to keep up.
		measure := i < keys
		wg.Add(1)
		go func() {
			defer wg.Done()
			for wr := range wch {
				if !measure {
					continue
				}
				now := time.Now()
				mu.Lock()
				for _, ev := range wr.Events {
					if t0, ok := putAt[string(ev.Kv.Key)+"@"+string(ev.Kv.Value)]; ok {
						lat = append(lat, now.Sub(t0))
					}
				}
				mu.Unlock()
			}
		}()
	}
	// The stalled watcher: a raw stream that never reads its responses.
	stalled, err := pb.NewWatchClient(cli.ActiveConnection()).Watch(ctx)
	if err != nil {
		b.Fatal(err)
	}
	if err := stalled.Send(&pb.WatchRequest{RequestUnion: &pb.WatchRequest_CreateRequest{CreateRequest: &pb.WatchCreateRequest{Key: []byte("/w/"), RangeEnd: []byte("/w0")}}}); err != nil {
		b.Fatal(err)
	}
	time.Sleep(2 * time.Second) // let the watchers register
	rssBefore := rssKB(b, m.Pid())

	b.ResetTimer()
	for n := 0; n < b.N; n++ {
		// 100 writes a second for 5 seconds, 1 KiB each.
		val := strings.Repeat("v", 1024)
		tick := time.NewTicker(10 * time.Millisecond)
		for i := 0; i < 500; i++ {
			<-tick.C
			key := fmt.Sprintf("/w/%03d", i%keys)
			v := fmt.Sprintf("%d-%s", i, val)
			mu.Lock()
			putAt[key+"@"+v] = time.Now()
			mu.Unlock()
			if _, err := cli.Put(ctx, key, v); err != nil {
				b.Fatal(err)
			}
		}
		tick.Stop()
	}
	b.StopTimer()
	time.Sleep(time.Second)
	rssAfter := rssKB(b, m.Pid())
	mu.Lock()
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	if len(lat) == 0 {
		mu.Unlock()
		b.Fatal("no event was delivered")
	}
	p50, p99 := lat[len(lat)/2], lat[len(lat)*99/100]
	mu.Unlock()
	b.ReportMetric(float64(rssBefore)/1024, "rss-before-MB")
	b.ReportMetric(float64(rssAfter)/1024, "rss-after-MB")
	b.ReportMetric(float64(p50.Microseconds())/1000, "event-p50-ms")
	b.ReportMetric(float64(p99.Microseconds())/1000, "event-p99-ms")
	b.Logf("10,000 watchers + 1 stalled: RSS %d MB -> %d MB, event latency p50 %v p99 %v (%d events measured)",
		rssBefore/1024, rssAfter/1024, p50, p99, len(lat))
	// Bounded memory: the stalled watcher holds at most its buffer, so the
	// member must not have grown by more than the data written many times
	// over (500 KiB written; 256 MB is a generous ceiling, not a tuning).
	if rssAfter-rssBefore > 256*1024 {
		b.Fatalf("RSS grew by %d MB with one stalled watcher", (rssAfter-rssBefore)/1024)
	}
	cancel()
	wg.Wait()
}

func rssKB(b *testing.B, pid int) int64 {
	b.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		b.Fatalf("reading RSS of pid %d: %v", pid, err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
			n, _ := strconv.ParseInt(f[1], 10, 64)
			return n
		}
	}
	b.Fatal("no VmRSS line")
	return 0
}
