package mvcc

import (
	"fmt"
	"os"
	"path/filepath"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Defragment rewrites the backend into a new file that holds only live
// pages, then swaps it in: compaction frees pages inside the file, this
// gives the space back to the disk. Writers wait while it runs (as in
// etcd); readers wait too.
func (s *Store) Defragment() (before, after int64, err error) {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if err := s.flushLocked(); err != nil {
		return 0, 0, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return 0, 0, ErrClosed
	}
	if s.batch != nil {
		return 0, 0, ErrBatchOpen
	}
	start := time.Now()
	before = s.sizeLocked()
	tmp := s.path + ".defrag"
	_ = os.Remove(tmp)
	dst, err := bolt.Open(tmp, 0o600, boltOptions())
	if err != nil {
		return 0, 0, fmt.Errorf("mvcc: defragment: create %s: %w", tmp, err)
	}
	if err := bolt.Compact(dst, s.db, 64<<20); err != nil {
		dst.Close()
		os.Remove(tmp)
		return 0, 0, fmt.Errorf("mvcc: defragment: copy live pages: %w", err)
	}
	if err := dst.Sync(); err != nil {
		dst.Close()
		os.Remove(tmp)
		return 0, 0, fmt.Errorf("mvcc: defragment: sync %s: %w", tmp, err)
	}
	if err := dst.Close(); err != nil {
		os.Remove(tmp)
		return 0, 0, err
	}
	if err := s.db.Close(); err != nil {
		os.Remove(tmp)
		return 0, 0, fmt.Errorf("mvcc: defragment: close old file: %w", err)
	}
	s.closed = true // until the reopen below succeeds
	if err := os.Rename(tmp, s.path); err != nil {
		os.Remove(tmp)
		if lerr := s.load(); lerr == nil {
			s.closed = false
		}
		return 0, 0, fmt.Errorf("mvcc: defragment: install %s: %w", tmp, err)
	}
	if err := syncDir(filepath.Dir(s.path)); err != nil {
		return 0, 0, err
	}
	if err := s.reopen(); err != nil {
		return 0, 0, err
	}
	s.closed = false
	after = s.sizeLocked()
	s.log.Info("defragmented backend", "size-before", before, "size-after", after, "took", time.Since(start).String())
	return before, after, nil
}

// sizeLocked is the database's logical size (what Size reports).
func (s *Store) sizeLocked() int64 {
	var n int64
	_ = s.db.View(func(tx *bolt.Tx) error {
		n = tx.Size()
		return nil
	})
	return n
}

// reopen opens the defragmented file in place of the old one. The file
// holds the same revisions, so the in-memory index, revisions and applied
// index all still hold: unlike load, reopen does not rebuild them (a scan
// of every revision, most of a defragmentation's time at a million keys).
// A background compaction restarts its current step on the new file.
func (s *Store) reopen() error {
	db, err := bolt.Open(s.path, 0o600, boltOptions())
	if err != nil {
		return fmt.Errorf("mvcc: defragment: reopen %s: %w", s.path, err)
	}
	s.db = db
	s.epoch++
	if s.compactProgress != nil {
		close(s.compactProgress) // waiters re-check against the new file
	}
	s.compactProgress = make(chan struct{})
	if s.compactKick != nil {
		s.kickCompactor()
	}
	return nil
}
