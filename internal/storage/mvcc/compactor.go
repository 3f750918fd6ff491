package mvcc

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"sort"
	"time"

	"google.golang.org/protobuf/encoding/protowire"
)

// Background compaction, as etcd does it.
//
// Batch.Compact applies a compaction logically and at once: it records the
// compacted revision (compacted_rev) in its transaction, so from its commit
// on every read refuses older revisions, and a read at or after it sees
// the same whether or not the older entries are still in the index. The
// compactor goroutine then works in steps, with CompactionSleepInterval
// between them: first it trims the index, CompactionBatchLimit keys per
// step (publishing a trimmed copy), then it deletes the dropped revisions
// from the kv bucket, looking at no more than CompactionBatchLimit entries
// per step. A step holds the write lock (wmu) only for its own work, so
// applied batches (puts) go on between steps. The step that finds nothing
// left records finished_compact_rev and commits.
//
// A kv entry at or below the compaction's revision is deleted iff the
// compaction drops it (compactedAway): the index no longer holds it, or
// holds it among the entries the trim will drop. The index only ever loses
// revisions below the compacted one, so no reader can ask for what was
// deleted, and deleting is idempotent: after a
// crash, load finds finished < compacted, compacts the rebuilt index the
// same way and the compactor simply starts over.
//
// What clients see (reads, watches, HashKV) depends only on the index and
// the compacted revision, never on how far the deletion got.

const (
	defaultCompactionBatchLimit    = 1000                  // etcd's --compaction-batch-limit
	defaultCompactionSleepInterval = 10 * time.Millisecond // etcd's --compaction-sleep-interval
)

// compactJob is where the compactor is in the kv bucket.
type compactJob struct {
	target  int64    // the compaction being finished
	epoch   uint64   // the file it was started on (load bumps it)
	next    revision // first kv entry not yet looked at
	started time.Time
}

// stepResult is what one compactor step did.
type stepResult struct {
	more     bool // work remains
	finished bool // this step finished the compaction
	deleted  int  // kv entries deleted
}

// compactedAway reports whether a compaction at target drops the write of
// key at r (r.main <= target): the index no longer holds it, or holds it
// among the entries the compaction drops and the trim has not yet removed.
// The answer is the same however far the background trim got.
func compactedAway(t *index, probe *keyIndex, key []byte, r revision, target int64) bool {
	probe.key = key
	ki, ok := t.Get(probe)
	probe.key = nil
	if !ok {
		return true
	}
	i := sort.Search(len(ki.revs), func(i int) bool { return !ki.revs[i].revision.less(r) })
	if i == len(ki.revs) || ki.revs[i].revision != r {
		return true
	}
	return i < ki.compactDrop(target)
}

// trimIndexStep trims up to limit keys of the index to the compaction at
// target, from s.trimNext on, and publishes the trimmed index; the caller
// holds wmu, so no batch is open. It reports whether keys remain.
func (s *Store) trimIndexStep(target int64, limit int) bool {
	s.mu.Lock()
	t := s.tree.Clone() // under mu: btree.Clone must not overlap readers
	s.mu.Unlock()
	type change struct {
		ki   *keyIndex
		drop int
	}
	var changes []change
	var next []byte
	n := 0
	t.AscendGreaterOrEqual(&keyIndex{key: s.trimNext}, func(ki *keyIndex) bool {
		if n == limit {
			next = ki.key
			return false
		}
		n++
		if d := ki.compactDrop(target); d > 0 {
			changes = append(changes, change{ki, d})
		}
		return true
	})
	for _, c := range changes {
		if c.drop == len(c.ki.revs) {
			t.Delete(c.ki)
			continue
		}
		// A new keyIndex with gen 0, which no batch owns: published
		// readers keep the old one.
		t.ReplaceOrInsert(&keyIndex{key: c.ki.key, revs: slices.Clone(c.ki.revs[c.drop:]), create: c.ki.create, ver: c.ki.ver})
	}
	s.mu.Lock()
	s.tree = t
	if next == nil {
		s.trimmed = target
	}
	s.mu.Unlock()
	s.trimNext = next
	return next != nil
}

// kvKey returns the key field of an encoded KeyValue without copying it.
func kvKey(buf []byte) ([]byte, error) {
	for b := buf; len(b) > 0; {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return nil, fmt.Errorf("%w: bad KeyValue tag: %v", ErrCorrupt, protowire.ParseError(n))
		}
		b = b[n:]
		if num == 1 && typ == protowire.BytesType {
			v, m := protowire.ConsumeBytes(b)
			if m < 0 {
				return nil, fmt.Errorf("%w: bad KeyValue key: %v", ErrCorrupt, protowire.ParseError(m))
			}
			return v, nil
		}
		if n = protowire.ConsumeFieldValue(num, typ, b); n < 0 {
			return nil, fmt.Errorf("%w: bad KeyValue field %d: %v", ErrCorrupt, num, protowire.ParseError(n))
		}
		b = b[n:]
	}
	return nil, nil
}

// compactIndex drops from t what a compaction at rev drops; t must be
// owned by the caller (rebuild). It is the index half of Batch.Compact.
func compactIndex(t *index, rev int64) {
	var gone []*keyIndex
	t.Ascend(func(ki *keyIndex) bool {
		if n := ki.compactDrop(rev); n == len(ki.revs) {
			gone = append(gone, ki)
		} else if n > 0 {
			ki.revs = append(ki.revs[:0:0], ki.revs[n:]...)
		}
		return true
	})
	for _, ki := range gone {
		t.Delete(ki)
	}
}

// kickCompactor wakes the compactor (a compaction was published or the
// file changed); it never blocks.
func (s *Store) kickCompactor() {
	select {
	case s.compactKick <- struct{}{}:
	default:
	}
}

func (s *Store) startCompactor() {
	s.compactKick = make(chan struct{}, 1)
	s.compactStop, s.compactDone = make(chan struct{}), make(chan struct{})
	go s.compactor(s.compactStop, s.compactDone)
	s.kickCompactor() // an unfinished compaction found by load
}

// compactor finishes compactions until stop is closed.
func (s *Store) compactor(stop <-chan struct{}, done chan<- struct{}) {
	defer close(done)
	limit := cmpOr(s.opts.CompactionBatchLimit, defaultCompactionBatchLimit)
	pause := s.opts.CompactionSleepInterval
	if pause <= 0 {
		pause = defaultCompactionSleepInterval
	}
	var job compactJob
	timer := time.NewTimer(pause)
	timer.Stop()
	defer timer.Stop()
	for {
		res, err := s.compactStep(stop, &job, limit)
		if err != nil {
			// The store failed: a restart starts over; until then the
			// next kick retries.
			s.log.Warn("background compaction step failed", "compact-revision", job.target, "error", err.Error())
			res.more = false
		}
		if h := s.opts.afterCompactStep; h != nil && (res.more || res.finished) {
			h(res)
		}
		if !res.more {
			select {
			case <-stop:
				return
			case <-s.compactKick:
			}
			continue
		}
		timer.Reset(pause)
		select {
		case <-stop:
			return
		case <-timer.C:
		}
	}
}

func cmpOr(v, def int) int {
	if v > 0 {
		return v
	}
	return def
}

// compactStep deletes dropped revisions among the next limit kv entries
// of the pending compaction. It reports whether work remains and how many
// revisions it deleted.
func (s *Store) compactStep(stop <-chan struct{}, job *compactJob, limit int) (res stepResult, err error) {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	select {
	case <-stop:
		return res, nil
	default:
	}
	if s.failed != nil {
		return res, s.failed
	}
	s.mu.RLock()
	closed, target, finished, trimmed, epoch, tree := s.closed, s.compacted, s.finished, s.trimmed, s.epoch, s.tree
	s.mu.RUnlock()
	if closed || (finished >= target && trimmed >= target) {
		job.target = 0
		return res, nil
	}
	if trimmed < target {
		// The index first, in steps of limit keys (etcd also trims its
		// index in the background); then the file.
		if job.target != target || job.epoch != epoch {
			*job = compactJob{target: target, epoch: epoch, started: time.Now()}
			s.trimNext = nil
			s.log.Info("background compaction started", "compact-revision", target, "previous", finished)
		}
		// The file's deletion then starts at job.next, its beginning.
		s.trimIndexStep(target, limit)
		res.more = true
		return res, nil
	}
	if job.target != target || job.epoch != epoch {
		// A newer compaction covers everything the older one would delete,
		// but also entries before job.next: start from the beginning.
		*job = compactJob{target: target, epoch: epoch, started: time.Now()}
	}
	start := time.Now()
	tx, own := s.wtx, false
	if tx == nil {
		if tx, err = s.db.Begin(true); err != nil {
			return res, fmt.Errorf("mvcc: compaction: begin write transaction: %w", err)
		}
		own = true
	}
	kvb := tx.Bucket(bucketKV)
	var dead [][]byte
	probe := &keyIndex{}
	end := true // no kv entry left at or below target
	c := kvb.Cursor()
	var kbuf [revKeyLen + 1]byte
	n := 0
	for k, v := c.Seek(appendRevKey(kbuf[:0], job.next, false)); k != nil; k, v = c.Next() {
		r, _, perr := parseRevKey(k)
		if perr != nil {
			err = perr
			break
		}
		if r.main > target {
			break
		}
		if n == limit {
			end = false
			break
		}
		n++
		key, kerr := kvKey(v)
		if kerr != nil {
			err = fmt.Errorf("revision %d/%d: %w", r.main, r.sub, kerr)
			break
		}
		if compactedAway(tree, probe, key, r, target) {
			dead = append(dead, bytes.Clone(k))
		}
		job.next = revision{main: r.main, sub: r.sub + 1}
	}
	for _, k := range dead {
		if err != nil {
			break
		}
		if derr := kvb.Delete(k); derr != nil {
			err = fmt.Errorf("mvcc: compaction: delete %x: %w", k, derr)
		}
	}
	if err == nil && end {
		err = putUint(tx.Bucket(bucketMVCC), keyFinishedCompactRev, uint64(target))
	}
	if err != nil {
		if own {
			_ = tx.Rollback()
		} else {
			// Published batches share this transaction: it can no longer be
			// trusted, and a restart replays them from the log.
			s.failed = fmt.Errorf("mvcc: background compaction failed with deferred batches pending; restart to replay them from the log: %w", err)
		}
		return res, err
	}
	res.deleted = len(dead)
	// Each step commits what it deleted (etcd forces a commit per batch
	// too): left in a deferred transaction, thousands of deletions would
	// make some later put pay for one large commit.
	if own {
		if err := tx.Commit(); err != nil {
			return res, fmt.Errorf("mvcc: compaction: commit: %w", err)
		}
	} else if err := s.flushLocked(); err != nil {
		return res, err
	}
	if !end {
		res.more = true
		return res, nil
	}
	s.mu.Lock()
	s.finished = target
	close(s.compactProgress)
	s.compactProgress = make(chan struct{})
	s.mu.Unlock()
	s.log.Info("background compaction finished", "compact-revision", target, "took", time.Since(job.started))
	s.log.Debug("last compaction step", "took", time.Since(start))
	job.target = 0
	res.finished = true
	return res, nil
}

// CompactionDone reports the compacted revision and the revision up to
// which the compactor has deleted the compacted history from the file.
func (s *Store) CompactionDone() (compacted, finished int64) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.compacted, s.finished
}

// WaitCompaction waits until the compaction published when it is called
// has been deleted from the file (etcd's physical compaction). It returns
// early, with no error, if the file is replaced by one compacted less.
func (s *Store) WaitCompaction(ctx context.Context) error {
	s.mu.RLock()
	target := s.compacted
	s.mu.RUnlock()
	for {
		s.mu.RLock()
		closed, fin, comp, ch := s.closed, s.finished, s.compacted, s.compactProgress
		s.mu.RUnlock()
		switch {
		case fin >= min(target, comp):
			return nil
		case closed:
			return ErrClosed
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}
