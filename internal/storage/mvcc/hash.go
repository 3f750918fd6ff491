package mvcc

import (
	"encoding/binary"
	"hash/crc32"
)

// HashKV hashes the key history up to and including revision rev (0 means
// the current revision): every revision key and value in the kv bucket,
// in revision order. Members that applied the same log hold the same
// history, so equal revisions must give equal hashes; a mismatch means
// corrupted data. It returns the hash, the revision hashed and the
// compacted revision (history below it is gone, so compare only hashes
// taken with the same compacted revision).
func (s *Store) HashKV(rev int64) (hash uint32, hashRev, compacted int64, err error) {
	// The revision is read before the transaction opens: the transaction
	// then holds at least everything up to it, and later revisions are
	// skipped by the bound below.
	// Flushed first, under wmu: the file then holds every revision up to cur.
	s.wmu.Lock()
	if err := s.flushLocked(); err != nil {
		s.wmu.Unlock()
		return 0, 0, 0, err
	}
	cur, comp := s.Rev()
	tx, err := s.readTx()
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
	c := tx.Bucket(bucketKV).Cursor()
	for k, v := c.First(); k != nil; k, v = c.Next() {
		if string(k[:8]) >= string(upper[:]) {
			break
		}
		h.Write(k)
		h.Write(v)
	}
	return h.Sum32(), rev, comp, nil
}
