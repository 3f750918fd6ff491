package mvcc

import (
	"bytes"
	"hash/crc32"

	bolt "go.etcd.io/bbolt"
)

// Hash hashes the whole database as of the snapshot (Maintenance.Hash):
// every bucket's name, keys and values, except the applied raft position,
// which is this member's bookkeeping rather than data. Members that
// applied the same entries hold the same hash.
func (sn *Snapshot) Hash() (uint32, error) {
	h := crc32.New(crc32.MakeTable(crc32.Castagnoli))
	err := sn.tx.ForEach(func(name []byte, b *bolt.Bucket) error {
		h.Write(name)
		return b.ForEach(func(k, v []byte) error {
			if bytes.Equal(name, bucketMVCC) && (bytes.Equal(k, keyAppliedIndex) || bytes.Equal(k, keyAppliedTerm)) {
				return nil
			}
			h.Write(k)
			h.Write(v)
			return nil
		})
	})
	return h.Sum32(), err
}
