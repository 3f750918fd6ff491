package mvcc

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
)

// BenchmarkPutBatch applies 100 puts per Batch (one bbolt commit + fsync),
// the shape of an apply batch under load. Reported per put.
func BenchmarkPutBatch(b *testing.B) {
	s := openTest(b)
	const perBatch = 100
	keys := make([][]byte, 10000)
	for i := range keys {
		keys[i] = fmt.Appendf(nil, "/bench/key/%06d", i)
	}
	val := make([]byte, 256)
	req := &pb.PutRequest{Value: val}
	b.SetBytes(int64(len(val)))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; {
		batch, err := s.Begin()
		if err != nil {
			b.Fatal(err)
		}
		for j := 0; j < perBatch && i < b.N; j, i = j+1, i+1 {
			req.Key = keys[i%len(keys)]
			if _, err := batch.Put(req); err != nil {
				b.Fatal(err)
			}
		}
		batch.SetApplied(uint64(i), 1)
		if err := batch.Commit(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRangeSingleKey reads one key from a 10k-key store.
func BenchmarkRangeSingleKey(b *testing.B) {
	s := openTest(b)
	apply(b, s, func(batch *Batch) {
		for i := range 10000 {
			mustPut(b, batch, fmt.Sprintf("/bench/key/%06d", i), "value", 0)
		}
	})
	req := &pb.RangeRequest{Key: []byte("/bench/key/004242")}
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if r, err := s.Range(req); err != nil || len(r.Kvs) != 1 {
			b.Fatal(r, err)
		}
	}
}

// BenchmarkCompactionPutLatency is the probe of issue 16: a store holding
// 400,000 revisions (1,000 keys x 400 versions) is compacted at its newest
// revision while another goroutine keeps putting, one put per batch (as an
// apply loop does), with the server's deferred commits. It reports the
// longest and 99th percentile put, how long the Compact batch itself took
// (what the apply loop waits for), and how long until the deleted
// revisions are gone from the file. Run with -benchtime=1x.
func BenchmarkCompactionPutLatency(b *testing.B) {
	for range b.N {
		b.StopTimer()
		s, err := Open(filepath.Join(b.TempDir(), "db"), Options{CommitInterval: 100 * time.Millisecond})
		if err != nil {
			b.Fatal(err)
		}
		val := make([]byte, 100)
		for v := range 400 {
			apply(b, s, func(batch *Batch) {
				for k := range 1000 {
					if _, err := batch.Put(&pb.PutRequest{Key: fmt.Appendf(nil, "/probe/%04d", k), Value: val}); err != nil {
						b.Fatal(err)
					}
				}
				batch.SetApplied(uint64(v+1), 1)
			})
		}
		if err := s.Flush(); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		// One goroutine applies everything, as the apply loop does: a put
		// waiting behind the Compact batch waits as long as that batch.
		var ds []time.Duration
		var compactBatch, total time.Duration
		var t0 time.Time
		start := time.Now()
		for i := 0; i < 1_000_000; i++ {
			if os.Getenv("PROBE_NO_COMPACT") != "" { // baseline: the same loop for 6s, no compaction
				if time.Since(start) > 6*time.Second {
					break
				}
				goto put
			}
			if t0.IsZero() && time.Since(start) > 50*time.Millisecond {
				cur, _ := s.Rev()
				t0 = time.Now()
				if err := compact(s, cur); err != nil {
					b.Fatal(err)
				}
				compactBatch = time.Since(t0)
			}
		put:
			p0 := time.Now()
			apply(b, s, func(batch *Batch) { mustPut(b, batch, fmt.Sprintf("/live/%d", i%100), "x", 0) })
			ds = append(ds, time.Since(p0))
			if !t0.IsZero() {
				if comp, fin := s.CompactionDone(); fin >= comp {
					total = time.Since(t0)
					break
				}
			}
			if time.Since(start) > time.Minute {
				b.Fatal("compaction not finished within a minute")
			}
		}
		slices.Sort(ds)
		b.ReportMetric(float64(ds[len(ds)-1].Microseconds())/1000, "max-put-ms")
		b.ReportMetric(float64(ds[len(ds)*99/100].Microseconds())/1000, "p99-put-ms")
		b.ReportMetric(float64(compactBatch.Microseconds())/1000, "compact-batch-ms")
		b.ReportMetric(float64(total.Microseconds())/1000, "compaction-done-ms")
		b.ReportMetric(float64(len(ds)), "puts")
		b.ReportMetric(float64(ds[len(ds)*9999/10000].Microseconds())/1000, "p99.99-put-ms")
		slow := 0
		for _, d := range ds {
			if d > 10*time.Millisecond {
				slow++
			}
		}
		b.ReportMetric(float64(slow), "puts>10ms")
		s.Close()
	}
}
