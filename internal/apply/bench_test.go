package apply

import (
	"fmt"
	"path/filepath"
	"testing"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
)

// BenchmarkRevoke measures one lease revoke (10 attached keys) at growing
// keyspace sizes. The lessor knows each lease's keys, so the cost must not
// grow with the keyspace (it grew linearly when a revoke walked every live
// key): compare ns/op across the sub-benchmarks.
//
//	go test ./internal/apply -run '^$' -bench BenchmarkRevoke -benchtime 200x
func BenchmarkRevoke(b *testing.B) {
	for _, keys := range []int{1_000, 20_000, 200_000} {
		b.Run(fmt.Sprintf("keyspace=%d", keys), func(b *testing.B) {
			r := openReplica(b, filepath.Join(b.TempDir(), "db"), true)
			index := uint64(0)
			next := func() uint64 { index++; return index }
			// Load the keyspace without leases, in batches as raft would.
			const batch = 5_000
			for i := 0; i < keys; i += batch {
				var reqs []*pb.InternalRaftRequest
				for j := i; j < min(i+batch, keys); j++ {
					reqs = append(reqs, &pb.InternalRaftRequest{Put: &pb.PutRequest{Key: fmt.Appendf(nil, "bulk/%08d", j), Value: make([]byte, 64)}})
				}
				r.apply(entries(index+1, reqs...))
				index += uint64(len(reqs))
			}
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				id := int64(i + 1)
				reqs := []*pb.InternalRaftRequest{grant(id)}
				for k := range 10 {
					reqs = append(reqs, putL(fmt.Sprintf("leased/%d/%d", id, k), id))
				}
				r.apply(entries(index+1, reqs...))
				index += uint64(len(reqs))
				b.StartTimer()
				r.apply(entries(next(), revoke(id)))
			}
		})
	}
}
