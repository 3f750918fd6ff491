package mvcc

import (
	"bytes"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
)

// Batch is one bbolt read-write transaction applying a batch of committed
// raft entries. Its operations see each other's writes; readers of the Store
// see none of them until Commit returns. A Batch is used by one goroutine.
//
// An operation that returns an error changed nothing, except for I/O or
// corruption errors, which poison the Batch: Commit then refuses and rolls
// back, and the caller should stop (the state machine can no longer follow
// the log).
type Batch struct {
	s                 *Store
	tx                *bolt.Tx
	kvb, mvccb, metab *bolt.Bucket
	tree              *index // copy-on-write clone of the published index
	gen               uint64 // keyIndexes with this gen belong to this Batch
	rev, compacted    int64
	sub               int64 // writes made by the current operation so far

	appliedSet                bool
	appliedIndex, appliedTerm uint64

	// Watch events, recorded only when watchers exist (decided at Begin;
	// notify serves watchers added meanwhile from history).
	record, withPrev bool
	events           []recEvent

	// arena holds every key and value handed to bbolt: bbolt keeps
	// references to them until the transaction ends, so they cannot live in
	// reused scratch space, and one growing buffer saves an allocation each.
	arena []byte
	probe keyIndex
	kbuf  [revKeyLen + 1]byte
	err   error
	done  bool

	onWrite func(key []byte, lease int64, tomb bool) // see OnWrite

	ov    []pendingKV // the store's overlay plus this batch's writes (deferred mode)
	ops   int         // writes to the transaction
	dirty bool        // the transaction was changed by this batch
	sync  bool        // commit the transaction (fsync) with this batch
}

// Begin starts a Batch. Only one Batch may be open at a time.
func (s *Store) Begin() (*Batch, error) {
	s.mu.RLock()
	closed, open := s.closed, s.batch != nil
	s.mu.RUnlock()
	switch {
	case closed:
		return nil, ErrClosed
	case open:
		return nil, ErrBatchOpen
	}
	s.wmu.Lock() // released by Commit or Abort
	if s.failed != nil {
		s.wmu.Unlock()
		return nil, s.failed
	}
	s.mu.Lock()
	if s.closed || s.batch != nil {
		closed := s.closed
		s.mu.Unlock()
		s.wmu.Unlock()
		if closed {
			return nil, ErrClosed
		}
		return nil, ErrBatchOpen
	}
	s.gen++
	// Clone under the write lock: btree.Clone must not overlap readers.
	b := &Batch{s: s, tree: s.tree.Clone(), gen: s.gen, rev: s.rev, compacted: s.compacted,
		record: s.hub.watchers.Load() > 0, withPrev: s.hub.prevKV.Load() > 0, ov: s.ov}
	if s.wtx != nil {
		b.arena = s.wtxArena // bbolt still references what is in it
	} else {
		b.arena = s.arena[:0]
		s.arena = nil
	}
	s.batch = b
	db := s.db
	s.mu.Unlock()

	tx := s.wtx
	if tx == nil {
		var err error
		if tx, err = db.Begin(true); err != nil {
			s.mu.Lock()
			s.batch = nil
			s.mu.Unlock()
			b.done = true
			s.wmu.Unlock()
			return nil, fmt.Errorf("mvcc: begin write transaction: %w", err)
		}
	}
	b.tx = tx
	b.kvb, b.mvccb, b.metab = tx.Bucket(bucketKV), tx.Bucket(bucketMVCC), tx.Bucket(bucketMeta)
	b.kvb.FillPercent = 0.9 // kv keys only ever grow: pack pages fuller
	return b, nil
}

func (b *Batch) usable() error {
	if b.done {
		return ErrBatchDone
	}
	if b.err != nil {
		return fmt.Errorf("mvcc: batch failed earlier: %w", b.err)
	}
	return nil
}

// fail poisons the batch after an error that may have left partial writes.
func (b *Batch) fail(err error) error {
	if b.err == nil {
		b.err = err
	}
	return err
}

// readRev is the revision reads inside the current operation see: the
// operation's own revision once it has written something.
func (b *Batch) readRev() int64 {
	if b.sub > 0 {
		return b.rev + 1
	}
	return b.rev
}

// endOp closes a top-level operation: it took a new revision iff it wrote.
func (b *Batch) endOp() {
	if b.sub > 0 {
		b.rev++
		b.sub = 0
	}
}

// Rev returns the batch's current revision (including its own writes).
func (b *Batch) Rev() int64 { return b.rev }

func (b *Batch) lookup(key []byte) *keyIndex {
	b.probe.key = key
	ki, _ := b.tree.Get(&b.probe)
	b.probe.key = nil
	return ki
}

// claim makes key's index entry one this batch owns, in one descent of the
// tree instead of lookup's and then write's: ReplaceOrInsert puts a fresh
// entry in and hands back the one it replaced (old, nil for a new key),
// whose state the fresh one takes over. Only for a write that cannot be
// refused once claimed: the entry is in the batch's tree from here on.
func (b *Batch) claim(key []byte) (own, old *keyIndex) {
	own = &keyIndex{key: key, gen: b.gen}
	old, found := b.tree.ReplaceOrInsert(own)
	switch {
	case !found:
		// The same bytes, so the tree's order holds: key is the caller's.
		own.key, own.revs = bytes.Clone(key), make([]revEntry, 0, 2)
		return own, nil
	case old.gen == b.gen:
		*own = *old // this batch's entry already: its slices are ours
	default:
		own.key, own.create, own.ver = old.key, old.create, old.ver
		own.revs = append(make([]revEntry, 0, len(old.revs)+2), old.revs...)
	}
	return own, old
}

// get reads the live write at r from the batch's transaction.
func (b *Batch) get(r revision) (*mvccpb.KeyValue, error) {
	kv, err := getKV(b.kvb, b.kbuf[:0], r, true)
	if err != nil {
		// The index says r exists: a miss inside the writer is corruption.
		return nil, b.fail(fmt.Errorf("%w: %w", ErrCorrupt, err))
	}
	return kv, nil
}

// write stores one write of key (a tombstone when tomb) at the current
// operation's revision and updates the index; ki is key's index or nil.
func (b *Batch) write(ki *keyIndex, key, value []byte, lease int64, tomb bool) error {
	return b.writeOwned(ki, nil, key, value, lease, tomb)
}

// writeOwned is write with own, if not nil, the entry claim returned for
// key (ki is then the one it replaced).
func (b *Batch) writeOwned(ki, own *keyIndex, key, value []byte, lease int64, tomb bool) error {
	r := revision{main: b.rev + 1, sub: b.sub}
	var prev *mvccpb.KeyValue
	if b.record && b.withPrev && ki != nil && ki.live() {
		var err error
		if prev, err = b.get(ki.last().revision); err != nil {
			return err
		}
	}
	start := len(b.arena)
	b.arena = appendRevKey(b.arena, r, tomb)
	k := b.arena[start:len(b.arena):len(b.arena)]
	create, ver := r.main, int64(1)
	if ki != nil && ki.live() {
		create, ver = ki.create, ki.ver+1
	}
	start = len(b.arena)
	if tomb {
		b.arena = appendKV(b.arena, key, 0, r.main, 0, nil, 0)
	} else {
		b.arena = appendKV(b.arena, key, create, r.main, ver, value, lease)
	}
	val := b.arena[start:len(b.arena):len(b.arena)]
	b.dirty = true
	if err := b.kvb.Put(k, val); err != nil {
		return b.fail(fmt.Errorf("mvcc: write revision %d/%d: %w", r.main, r.sub, err))
	}
	b.ops++
	if b.s.deferred() {
		b.ov = append(b.ov, pendingKV{rev: r, tomb: tomb, val: val})
	}
	b.sub++
	if b.onWrite != nil {
		b.onWrite(key, lease, tomb)
	}
	if b.record {
		b.recordEvent(key, value, create, r.main, ver, lease, tomb, prev)
	}
	switch {
	case own != nil:
		ki = own
	case ki == nil:
		ki = &keyIndex{key: bytes.Clone(key), revs: make([]revEntry, 0, 2), gen: b.gen}
		b.tree.ReplaceOrInsert(ki)
	case ki.gen != b.gen:
		ki = ki.clone(b.gen)
		b.tree.ReplaceOrInsert(ki)
	}
	ki.revs = append(ki.revs, revEntry{revision: r, tomb: tomb})
	if tomb {
		ki.create, ki.ver = 0, 0
	} else {
		ki.create, ki.ver = create, ver
	}
	return nil
}

// Range reads like Store.Range but sees this batch's writes.
func (b *Batch) Range(req *pb.RangeRequest) (*pb.RangeResponse, error) {
	if err := b.usable(); err != nil {
		return nil, err
	}
	return b.rangeReq(req)
}

func (b *Batch) rangeReq(req *pb.RangeRequest) (*pb.RangeResponse, error) {
	plan, err := planRange(b.tree, &b.probe, b.readRev(), b.compacted, req)
	if err != nil {
		return nil, err
	}
	return finishRange(kvSource{kvb: b.kvb}, plan, req)
}

// Put writes one key at a new revision.
func (b *Batch) Put(req *pb.PutRequest) (*pb.PutResponse, error) {
	if err := b.usable(); err != nil {
		return nil, err
	}
	resp, err := b.put(req)
	b.endOp()
	return resp, err
}

func (b *Batch) put(req *pb.PutRequest) (*pb.PutResponse, error) {
	if !req.IgnoreValue && !req.IgnoreLease {
		// Nothing can refuse this put: claim its index entry at once.
		own, ki := b.claim(req.Key)
		var prev *mvccpb.KeyValue
		if req.PrevKv && ki != nil && ki.live() {
			var err error
			if prev, err = b.get(ki.last().revision); err != nil {
				return nil, err
			}
		}
		return b.putResponse(req, prev, b.writeOwned(ki, own, req.Key, req.Value, req.Lease, false))
	}
	ki := b.lookup(req.Key)
	val, lease := req.Value, req.Lease
	var prev *mvccpb.KeyValue
	if req.PrevKv || req.IgnoreValue || req.IgnoreLease {
		if ki != nil && ki.live() {
			var err error
			if prev, err = b.get(ki.last().revision); err != nil {
				return nil, err
			}
		}
		if (req.IgnoreValue || req.IgnoreLease) && prev == nil {
			return nil, fmt.Errorf("%w: ignore_value/ignore_lease need an existing key, %q does not exist", ErrKeyNotFound, req.Key)
		}
		if req.IgnoreValue {
			val = prev.Value
		}
		if req.IgnoreLease {
			lease = prev.Lease
		}
	}
	return b.putResponse(req, prev, b.write(ki, req.Key, val, lease, false))
}

func (b *Batch) putResponse(req *pb.PutRequest, prev *mvccpb.KeyValue, err error) (*pb.PutResponse, error) {
	if err != nil {
		return nil, err
	}
	resp := &pb.PutResponse{Header: &pb.ResponseHeader{Revision: b.rev + 1}}
	if req.PrevKv {
		resp.PrevKv = prev
	}
	return resp, nil
}

// DeleteRange deletes every live key in [key, range_end); it takes a new
// revision only if it deleted something.
func (b *Batch) DeleteRange(req *pb.DeleteRangeRequest) (*pb.DeleteRangeResponse, error) {
	if err := b.usable(); err != nil {
		return nil, err
	}
	resp, err := b.deleteRange(req)
	b.endOp()
	return resp, err
}

func (b *Batch) deleteRange(req *pb.DeleteRangeRequest) (*pb.DeleteRangeResponse, error) {
	var victims []*keyIndex
	// Collect first: the tree must not change while it is being iterated.
	visit(b.tree, &b.probe, req.Key, req.RangeEnd, func(ki *keyIndex) bool {
		if ki.live() {
			victims = append(victims, ki)
		}
		return true
	})
	resp := &pb.DeleteRangeResponse{Header: &pb.ResponseHeader{}, Deleted: int64(len(victims))}
	if req.PrevKv {
		resp.PrevKvs = make([]*mvccpb.KeyValue, 0, len(victims))
		for _, ki := range victims {
			kv, err := b.get(ki.last().revision)
			if err != nil {
				return nil, err
			}
			resp.PrevKvs = append(resp.PrevKvs, kv)
		}
	}
	for _, ki := range victims {
		if err := b.write(ki, ki.key, nil, 0, true); err != nil {
			return nil, err
		}
	}
	resp.Header.Revision = b.readRev()
	return resp, nil
}

// OnWrite makes the batch call fn with every write it makes, in order, as
// it makes it: the key, the lease the new version carries (0 for none or a
// deletion) and whether it is a deletion. The apply path keeps each
// lease's key set with it, including writes of the batch being applied.
// fn must not use the batch.
func (b *Batch) OnWrite(fn func(key []byte, lease int64, tomb bool)) { b.onWrite = fn }

// DeleteKeys deletes those of keys that exist, all at one new revision
// (as sub-revisions, in the order given), as etcd deletes the keys of a
// revoked lease. It returns how many it deleted; with none it takes no
// revision.
func (b *Batch) DeleteKeys(keys [][]byte) (int64, error) {
	if err := b.usable(); err != nil {
		return 0, err
	}
	var n int64
	for _, k := range keys {
		ki := b.lookup(k)
		if ki == nil || !ki.live() {
			continue
		}
		if err := b.write(ki, ki.key, nil, 0, true); err != nil {
			b.endOp()
			return n, err
		}
		n++
	}
	b.endOp()
	return n, nil
}

// Compact compacts history at rev: for each key only the newest write at or
// below rev (unless that write is a deletion) and everything newer remain
// readable. It is logical and immediate: the compacted revision is saved
// in this transaction, so once the batch commits reads below rev fail, and
// nothing dropped can be read at rev or later. The index is trimmed and the
// dropped revisions deleted from the file in the background (compactor.go).
func (b *Batch) Compact(rev int64) (*pb.CompactionResponse, error) {
	if err := b.usable(); err != nil {
		return nil, err
	}
	if rev <= b.compacted {
		return nil, fmt.Errorf("%w: requested %d, already compacted at %d", ErrCompacted, rev, b.compacted)
	}
	if rev > b.rev {
		return nil, fmt.Errorf("%w: requested %d, current %d", ErrFutureRev, rev, b.rev)
	}
	// Committed before the compactor deletes anything, so a file never
	// lacks revisions its compacted revision says it holds. The index is
	// not walked here: with a million keys that walk held every write for
	// hundreds of milliseconds. Reads at or above rev see the same with or
	// without the older entries, and the compactor trims them (and deletes
	// them from the file) in the background.
	b.sync, b.dirty = true, true
	if b.mvccb.Get(keyFinishedCompactRev) == nil {
		// First compaction of this file, or of a file from before
		// background compaction: everything up to the old compacted
		// revision is deleted already.
		if err := putUint(b.mvccb, keyFinishedCompactRev, uint64(b.compacted)); err != nil {
			return nil, b.fail(fmt.Errorf("mvcc: compact: save finished compaction: %w", err))
		}
	}
	if err := putUint(b.mvccb, keyCompactedRev, uint64(rev)); err != nil {
		return nil, b.fail(fmt.Errorf("mvcc: compact: save compacted revision: %w", err))
	}
	b.compacted = rev
	b.s.log.Info("mvcc compaction applied; old revisions are trimmed and deleted in the background", "revision", rev)
	return &pb.CompactionResponse{Header: &pb.ResponseHeader{Revision: b.rev}}, nil
}

// SetMeta stores value under key in the meta bucket, in this transaction;
// a nil value deletes the key.
func (b *Batch) SetMeta(key string, value []byte) {
	if b.usable() != nil {
		return
	}
	// Meta (membership, leases, ...) is read from committed state.
	b.sync, b.dirty = true, true
	var err error
	if value == nil {
		err = b.metab.Delete([]byte(key))
	} else {
		err = b.metab.Put([]byte(key), bytes.Clone(value))
	}
	if err != nil {
		b.fail(fmt.Errorf("mvcc: set meta %q: %w", key, err))
	}
}

// MetaKeys lists the meta keys starting with prefix, in order, as this
// batch sees them.
func (b *Batch) MetaKeys(prefix string) []string {
	if b.usable() != nil {
		return nil
	}
	var out []string
	c := b.metab.Cursor()
	for k, _ := c.Seek([]byte(prefix)); k != nil && bytes.HasPrefix(k, []byte(prefix)); k, _ = c.Next() {
		out = append(out, string(k))
	}
	return out
}

// Meta reads a meta value as this batch sees it (nil if absent).
func (b *Batch) Meta(key string) []byte {
	if b.usable() != nil {
		return nil
	}
	return bytes.Clone(b.metab.Get([]byte(key)))
}

// SetApplied records the raft index and term this batch brings the store
// to; they are saved in the same transaction as the data.
func (b *Batch) SetApplied(index, term uint64) {
	b.appliedSet, b.appliedIndex, b.appliedTerm = true, index, term
}

// Sync makes Commit commit the bbolt transaction (with an fsync) even in
// deferred mode, e.g. before the raft log up to this batch is released.
func (b *Batch) Sync() { b.sync = true }

// Commit publishes the new index, revision and applied index to readers at
// once. It commits the bbolt transaction first (bbolt fsyncs) unless
// commits are deferred and this batch does not need one (see deferred.go).
func (b *Batch) Commit() error {
	if b.done {
		return ErrBatchDone
	}
	if b.err != nil {
		b.Abort()
		return fmt.Errorf("mvcc: batch rolled back after an earlier failure: %w", b.err)
	}
	if b.appliedSet {
		b.dirty = true
		if err := putUint(b.mvccb, keyAppliedIndex, b.appliedIndex); err != nil {
			b.Abort()
			return fmt.Errorf("mvcc: save applied index: %w", err)
		}
		if err := putUint(b.mvccb, keyAppliedTerm, b.appliedTerm); err != nil {
			b.Abort()
			return fmt.Errorf("mvcc: save applied term: %w", err)
		}
	}
	s := b.s
	// The time-based commit is left to the flusher goroutine: done here it
	// would stall this batch's proposers for a whole bbolt commit.
	commit := !s.deferred() || b.sync || s.wtxOps+b.ops >= s.opts.CommitOps
	var err error
	var took time.Duration
	if commit {
		start := time.Now()
		err = b.tx.Commit() // on error bbolt has rolled back
		took = time.Since(start)
	}

	be := batchEvents{rev: b.rev, events: b.events, recorded: b.record, withPrev: b.withPrev}
	arena := b.arena
	s.mu.Lock()
	if err == nil {
		s.tree, s.rev, s.compacted = b.tree, b.rev, b.compacted
		if b.appliedSet {
			s.appliedIndex, s.appliedTerm = b.appliedIndex, b.appliedTerm
		}
		if commit {
			s.ov = nil
		} else {
			s.ov = b.ov
		}
	}
	compacted := err == nil && b.compacted != s.finished && b.compacted > 0
	b.release(commit)
	s.mu.Unlock()
	if compacted {
		s.kickCompactor()
	}
	if commit {
		if err != nil && s.wtxOps > 0 {
			// Earlier published batches were rolled back with this one.
			s.failed = fmt.Errorf("mvcc: commit failed with %d deferred writes; restart to replay them from the log: %w", s.wtxOps, err)
		}
		s.wtx, s.wtxArena, s.wtxOps, s.wtxSince = nil, nil, 0, time.Time{}
	} else {
		if s.wtx == nil {
			s.wtxSince = time.Now()
		}
		s.wtx, s.wtxArena = b.tx, arena
		s.wtxOps += b.ops
	}
	s.wmu.Unlock()
	if err != nil {
		return fmt.Errorf("mvcc: commit: %w", err)
	}
	// Watchers hear of the batch only now that readers can see it.
	s.hub.notify(be)
	if commit && s.opts.OnCommit != nil {
		s.opts.OnCommit(took)
	}
	return nil
}

// Abort rolls the batch back; nothing it did becomes visible. In deferred
// mode the write transaction may also hold earlier published batches: a
// batch that changed nothing leaves it alone, and one that did rolls all of
// it back and stops the store (a restart replays those batches from the
// log; callers abort only on the way to stopping anyway).
func (b *Batch) Abort() {
	if b.done {
		return
	}
	s := b.s
	keep := false // the transaction stays open for the published batches in it
	if s.wtx != nil {
		if b.dirty {
			s.failed = fmt.Errorf("mvcc: a batch was rolled back together with %d uncommitted writes of earlier batches; restart to replay them from the log", s.wtxOps)
			s.log.Error("backend batch aborted with deferred writes pending", "pending-writes", s.wtxOps)
			s.wtx, s.wtxArena, s.wtxOps, s.wtxSince = nil, nil, 0, time.Time{}
		} else {
			keep = true
		}
	}
	if !keep {
		_ = b.tx.Rollback()
	}
	s.mu.Lock()
	b.release(!keep)
	s.mu.Unlock()
	s.wmu.Unlock()
}

// release ends the batch; the caller holds s.mu. Once the transaction is
// over (ended) bbolt no longer references the arena, and without deferred
// commits no reader does either, so the next batch may reuse it.
func (b *Batch) release(ended bool) {
	b.done = true
	if b.s.batch == b {
		b.s.batch = nil
		if ended && !b.s.deferred() && cap(b.arena) <= maxArenaReuse {
			b.s.arena = b.arena[:0]
		}
	}
	b.arena, b.tree, b.events, b.ov = nil, nil, nil, nil
}

// recordEvent keeps the watch event of one write. Key and value are copied:
// the arena is reused by the next batch.
func (b *Batch) recordEvent(key, value []byte, create, mod, ver, lease int64, tomb bool, prev *mvccpb.KeyValue) {
	kv := &mvccpb.KeyValue{ModRevision: mod}
	ev := &mvccpb.Event{Type: mvccpb.PUT, Kv: kv}
	if tomb {
		ev.Type = mvccpb.DELETE
		kv.Key = bytes.Clone(key)
	} else {
		both := make([]byte, len(key)+len(value))
		copy(both, key)
		copy(both[len(key):], value)
		kv.Key = both[:len(key):len(key)]
		if len(value) > 0 {
			kv.Value = both[len(key):]
		}
		kv.CreateRevision, kv.Version, kv.Lease = create, ver, lease
	}
	re := recEvent{ev: ev, withPrev: ev}
	if prev != nil {
		re.withPrev = &mvccpb.Event{Type: ev.Type, Kv: kv, PrevKv: prev}
	}
	b.events = append(b.events, re)
}

// Get returns the current version of key as this batch sees it, or nil if
// the key does not exist.
func (b *Batch) Get(key []byte) (*mvccpb.KeyValue, error) {
	if err := b.usable(); err != nil {
		return nil, err
	}
	ki := b.lookup(key)
	if ki == nil || !ki.live() {
		return nil, nil
	}
	return b.get(ki.last().revision)
}
