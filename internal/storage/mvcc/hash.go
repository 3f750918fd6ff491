package mvcc

import (
	"encoding/binary"
	"hash/crc32"

	bolt "go.etcd.io/bbolt"
)

// HashKV hashes the key history up to and including revision rev (0 means
// the current revision): every revision key and value in the kv bucket,
// in revision order. Members that applied the same log hold the same
// history, so equal revisions must give equal hashes; a mismatch means
// corrupted data. It returns the hash, the revision hashed and the
// compacted revision (history below it is gone, so compare only hashes
// taken with the same compacted revision).
func (s *Store) HashKV(rev int64) (hash uint32, hashRev, compacted int64, err error) {
	// Flushed first, under wmu: the file then holds every published
	// revision, and the compactor is between steps. The index is taken
	// with the transaction: while a compaction's deletions are under way
	// the file still holds revisions the index dropped, and those are
	// hashed as if already deleted (as etcd's hash skips what its
	// compaction does not keep), so the hash does not depend on how far
	// this member's compactor got.
	s.wmu.Lock()
	if err := s.flushLocked(); err != nil {
		s.wmu.Unlock()
		return 0, 0, 0, err
	}
	s.mu.RLock()
	cur, comp, finished, tree, closed := s.rev, s.compacted, s.finished, s.tree, s.closed
	var tx *bolt.Tx
	if closed {
		err = ErrClosed
	} else {
		tx, err = s.db.Begin(false)
	}
	s.mu.RUnlock()
	s.wmu.Unlock()
	if err != nil {
		return 0, 0, 0, err
	}
	defer tx.Rollback()
	if rev == 0 {
		rev = cur
	}
	if rev > cur {
		return 0, 0, 0, ErrFutureRev
	}
	if rev < comp {
		return 0, 0, 0, ErrCompacted
	}
	h := crc32.New(crc32.MakeTable(crc32.Castagnoli))
	// etcd starts its hash with its bucket's name, so an empty store hashes
	// to a non-zero value (clients and etcd's tests expect a "hash" field).
	h.Write([]byte("key"))
	var upper [8]byte
	binary.BigEndian.PutUint64(upper[:], uint64(rev+1))
	probe := &keyIndex{}
	c := tx.Bucket(bucketKV).Cursor()
	for k, v := c.First(); k != nil; k, v = c.Next() {
		if string(k[:8]) >= string(upper[:]) {
			break
		}
		if finished < comp && int64(binary.BigEndian.Uint64(k[:8])) <= comp {
			r, _, err := parseRevKey(k)
			if err != nil {
				return 0, 0, 0, err
			}
			key, err := kvKey(v)
			if err != nil {
				return 0, 0, 0, err
			}
			if compactedAway(tree, probe, key, r, comp) {
				continue // dropped by the compaction, not yet deleted
			}
		}
		h.Write(k)
		h.Write(v)
	}
	return h.Sum32(), rev, comp, nil
}
