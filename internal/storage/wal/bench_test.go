package wal

import (
	"fmt"
	"testing"

	"go.etcd.io/raft/v3/raftpb"
)

// BenchmarkSave measures one Save (one write + one fsync) on the real file
// system of the temp dir.
func BenchmarkSave(b *testing.B) {
	for _, n := range []int{1, 64} {
		b.Run(fmt.Sprintf("%dx256B", n), func(b *testing.B) {
			w := mustCreate(b, b.TempDir(), Options{})
			defer w.Close()
			data := make([]byte, 256)
			batch := make([]*raftpb.Entry, n)
			for i := range batch {
				batch[i] = &raftpb.Entry{Index: new(uint64), Term: new(uint64(1)), Data: data}
			}
			hs := hardst(1, 1, 0)
			b.SetBytes(int64(n * 256))
			b.ReportAllocs()
			next := uint64(1)
			for b.Loop() {
				for _, e := range batch {
					*e.Index = next
					next++
				}
				*hs.Commit = next - 1
				if err := w.Save(hs, batch); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
