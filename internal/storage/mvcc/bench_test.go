package mvcc

import (
	"fmt"
	"testing"

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
