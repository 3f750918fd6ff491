package mvcc

import (
	"bytes"
	"strings"
)

// MetaWithPrefix returns copies of every committed meta value whose key
// starts with prefix (for example all stored leases).
func (s *Store) MetaWithPrefix(prefix string) (map[string][]byte, error) {
	tx, err := s.readTx()
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	out := map[string][]byte{}
	c := tx.Bucket(bucketMeta).Cursor()
	for k, v := c.Seek([]byte(prefix)); k != nil && strings.HasPrefix(string(k), prefix); k, v = c.Next() {
		out[string(k)] = bytes.Clone(v)
	}
	return out, nil
}

// KeysWithLease returns the current (not deleted) keys that are attached
// to a lease, grouped by lease ID; keys without a lease are left out.
func (s *Store) KeysWithLease() (map[int64][][]byte, error) {
	s.mu.RLock()
	if s.closed {
		s.mu.RUnlock()
		return nil, ErrClosed
	}
	var revs []revision
	s.tree.Ascend(func(ki *keyIndex) bool {
		if ki.live() {
			revs = append(revs, ki.last().revision)
		}
		return true
	})
	src := kvSource{ov: s.ov}
	tx, err := s.db.Begin(false) // under mu: consistent with the index walk
	s.mu.RUnlock()
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	src.kvb = tx.Bucket(bucketKV)
	out := map[int64][][]byte{}
	var kbuf [revKeyLen + 1]byte
	for _, r := range revs {
		kv, err := src.get(kbuf[:0], r, false)
		if err != nil {
			return nil, err
		}
		if kv.Lease != 0 {
			out[kv.Lease] = append(out[kv.Lease], kv.Key)
		}
	}
	return out, nil
}
