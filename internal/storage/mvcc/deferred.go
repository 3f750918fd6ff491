package mvcc

import (
	"fmt"
	"sort"
	"time"

	bolt "go.etcd.io/bbolt"
	"go.etcd.io/etcd/api/v3/mvccpb"
)

// Deferred backend commits (Options.CommitInterval > 0).
//
// A committed Batch is published to readers at once, but its bbolt write
// transaction may stay open and carry the next batches too, and is committed
// (one fsync) by a background flusher once it is CommitInterval old, or with
// a batch once it holds CommitOps writes or when the batch asks for it (Sync,
// SetMeta, Compact), or before anything that reads
// the file as a whole (OpenSnapshot, HashKV, Defragment, ReplaceWith, Close).
// This is what etcd's backend does; it is safe because the raft log is the
// durable record: the applied index is saved in the same transaction as the
// data, so after a crash the server replays the log from the last committed
// applied index and rebuilds what was lost.
//
// Readers use bbolt read transactions, which do not see the open write
// transaction, so the writes it holds are also kept in memory in revision
// order (the overlay). kv is append-only by revision, so the overlay is a
// sorted slice: readers look revisions at or above its first one up in it
// and the rest in bbolt.

// pendingKV is one kv-bucket write held by the open write transaction.
type pendingKV struct {
	rev  revision
	tomb bool
	val  []byte // encoded KeyValue; never modified once published
}

// kvSource reads kv-bucket values: first the overlay captured with the
// read transaction, then bbolt. kvb may be nil when every revision read is
// in ov.
type kvSource struct {
	kvb *bolt.Bucket
	ov  []pendingKV
}

// inOverlay reports whether revision r, if it exists, is in ov.
func inOverlay(ov []pendingKV, r revision) bool {
	return len(ov) > 0 && !r.less(ov[0].rev)
}

func (src kvSource) get(kbuf []byte, r revision, withValue bool) (*mvccpb.KeyValue, error) {
	if inOverlay(src.ov, r) {
		i := sort.Search(len(src.ov), func(i int) bool { return !src.ov[i].rev.less(r) })
		if i < len(src.ov) && src.ov[i].rev == r && !src.ov[i].tomb {
			kv, err := decodeKV(src.ov[i].val, withValue)
			if err != nil {
				return nil, fmt.Errorf("revision %d/%d: %w", r.main, r.sub, err)
			}
			return kv, nil
		}
		return nil, fmt.Errorf("%w: revision %d/%d is no longer stored", ErrCompacted, r.main, r.sub)
	}
	if src.kvb == nil {
		return nil, fmt.Errorf("%w: revision %d/%d read without a transaction", ErrCorrupt, r.main, r.sub)
	}
	return getKV(src.kvb, kbuf, r, withValue)
}

// needsTx reports whether reading revs needs a bbolt read transaction.
func needsTx(ov []pendingKV, revs []revision) bool {
	for _, r := range revs {
		if !inOverlay(ov, r) {
			return true
		}
	}
	return false
}

func (s *Store) deferred() bool { return s.opts.CommitInterval > 0 }

// Flush commits the writes of published batches that are still in the open
// write transaction (a no-op without one). It waits for an open Batch.
func (s *Store) Flush() error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	return s.flushLocked()
}

// flushLocked commits the open write transaction; the caller holds wmu and
// no Batch is open.
func (s *Store) flushLocked() error {
	if s.failed != nil {
		return s.failed
	}
	if s.wtx == nil {
		return nil
	}
	start := time.Now()
	err := s.wtx.Commit() // on error bbolt has rolled back
	took := time.Since(start)
	s.wtx, s.wtxArena, s.wtxOps, s.wtxSince = nil, nil, 0, time.Time{}
	if err != nil {
		// Readers keep the overlay (memory stays consistent); no further
		// batch is accepted, and a restart replays the log.
		s.failed = fmt.Errorf("mvcc: commit of deferred batches failed; restart to replay them from the log: %w", err)
		s.log.Error("backend commit failed", "error", err.Error())
		return s.failed
	}
	s.mu.Lock()
	s.ov = nil
	s.mu.Unlock()
	if s.opts.OnCommit != nil {
		s.opts.OnCommit(took)
	}
	return nil
}

// committedReadTx flushes and opens a read transaction that holds every
// published revision.
func (s *Store) committedReadTx() (*bolt.Tx, error) {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if err := s.flushLocked(); err != nil {
		return nil, err
	}
	return s.readTx()
}

// flusher commits the open write transaction once it is CommitInterval
// old, between batches, so the commit (and its fsync) is off the apply path
// and a quiet member does not keep writes only in the log for long.
func (s *Store) flusher(stop <-chan struct{}, done chan<- struct{}) {
	defer close(done)
	t := time.NewTicker(max(s.opts.CommitInterval/4, time.Millisecond))
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			s.wmu.Lock()
			if s.wtx != nil && time.Since(s.wtxSince) >= s.opts.CommitInterval {
				_ = s.flushLocked() // a failure is kept in s.failed and logged
			}
			s.wmu.Unlock()
		}
	}
}

func (s *Store) startFlusher() {
	if !s.deferred() {
		return
	}
	s.flushStop, s.flushDone = make(chan struct{}), make(chan struct{})
	go s.flusher(s.flushStop, s.flushDone)
}

func (s *Store) stopFlusher() {
	if s.flushStop != nil {
		close(s.flushStop)
		<-s.flushDone
		s.flushStop = nil
	}
}
