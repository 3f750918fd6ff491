package mvcc

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/cadrekv/cadre/internal/storage/schema"
)

// Errors returned by the store. The API layer maps ErrCompacted,
// ErrFutureRev and ErrKeyNotFound to the matching etcd errors.
var (
	ErrCompacted   = errors.New("mvcc: required revision has been compacted")
	ErrFutureRev   = errors.New("mvcc: required revision is a future revision")
	ErrKeyNotFound = errors.New("mvcc: key not found")
	ErrClosed      = errors.New("mvcc: store is closed")
	ErrBatchOpen   = errors.New("mvcc: a batch is already open; commit or abort it first")
	ErrBatchDone   = errors.New("mvcc: batch already committed or aborted")
	ErrCorrupt     = errors.New("mvcc: database is corrupt")
)

// The layout's names are owned by internal/storage/schema.
var (
	bucketKV   = schema.BucketKV
	bucketMVCC = schema.BucketMVCC
	bucketMeta = schema.BucketMeta

	keyAppliedIndex = schema.KeyAppliedIndex
	keyAppliedTerm  = schema.KeyAppliedTerm
	keyCompactedRev = schema.KeyCompactedRev

	keyFinishedCompactRev = schema.KeyFinishedCompactRev
)

const (
	// initialMmapSize is reserved up front so that small and medium stores
	// never remap: a remap waits for every open read transaction.
	initialMmapSize = 10 << 20
	// maxArenaReuse bounds the write buffer kept between batches.
	maxArenaReuse = 4 << 20
)

// Options configures a Store.
type Options struct {
	Logger   *slog.Logger          // nil => discard
	OnCommit func(d time.Duration) // optional: duration of each bbolt commit (incl. fsync)
	// ProgressInterval is how often watchers that asked for progress
	// notifications and had no events get one; 0 => 10 minutes (etcd).
	ProgressInterval time.Duration
	// CommitInterval > 0 defers bbolt commits (see deferred.go): published
	// batches share one write transaction, committed at most this long
	// after its first batch or once it holds CommitOps writes. 0 commits
	// (and fsyncs) every batch.
	CommitInterval time.Duration
	CommitOps      int // 0 => 10,000 (etcd's batch limit)
	// CompactionBatchLimit bounds the kv entries one background compaction
	// step looks at (0 => 1000), CompactionSleepInterval is the pause
	// between steps (0 => 10ms): etcd's --compaction-batch-limit and
	// --compaction-sleep-interval (compactor.go).
	CompactionBatchLimit    int
	CompactionSleepInterval time.Duration

	afterCompactStep func(stepResult) // tests: called after each compactor step that did work
}

// Store is the MVCC key-value state machine backed by one bbolt file.
type Store struct {
	path string
	opts Options
	log  *slog.Logger

	// mu guards everything below. Readers hold it shared only while they
	// walk the index and open their bbolt read transaction; a Batch takes it
	// exclusively only to clone the index and to publish its result.
	mu           sync.RWMutex
	db           *bolt.DB
	tree         *index // published index; never modified after publishing
	rev          int64
	compacted    int64
	appliedIndex uint64
	appliedTerm  uint64
	batch        *Batch
	gen          uint64
	arena        []byte // write buffer reused by the next Batch
	closed       bool

	hub *hub // watchers; has its own lock, taken before mu

	// Background compaction (compactor.go). finished and compactProgress
	// are guarded by mu; finished changes only under wmu. epoch counts
	// loads: the compactor restarts its scan on a new file.
	finished int64
	epoch    uint64
	// The index is trimmed to a compaction in the background too, in
	// steps (trimIndexStep): trimmed is the compaction it is trimmed to
	// (guarded by mu, changed under wmu); trimNext is the first key the
	// next step looks at (wmu).
	trimmed         int64
	trimNext        []byte
	compactProgress chan struct{} // closed when finished or the file changes
	compactKick     chan struct{}
	compactStop     chan struct{}
	compactDone     chan struct{}
	stopOnce        sync.Once

	ov []pendingKV // writes published but not yet committed to bbolt; guarded by mu (and changed under wmu)

	// wmu is held by an open Batch and by a flush: one user of the write
	// transaction at a time. It is taken before mu. The fields below are
	// guarded by it.
	wmu       sync.Mutex
	wtx       *bolt.Tx // open write transaction of published batches (deferred mode)
	wtxArena  []byte   // keys and values bbolt references until wtx ends
	wtxOps    int
	wtxSince  time.Time
	failed    error // a deferred commit failed: no more batches
	flushStop chan struct{}
	flushDone chan struct{}
}

// Open opens (creating with mode 0600 if missing) the bbolt file at path and
// rebuilds the in-memory index from it.
func Open(path string, opts Options) (*Store, error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("mvcc: create directory for %s: %w", path, err)
	}
	s := &Store{path: path, opts: opts, log: opts.Logger}
	if err := s.load(); err != nil {
		return nil, err
	}
	if opts.CommitOps <= 0 {
		s.opts.CommitOps = 10000
	}
	s.hub = newHub(s, opts.ProgressInterval, s.rev)
	s.startFlusher()
	s.startCompactor()
	return s, nil
}

func boltOptions() *bolt.Options {
	return &bolt.Options{
		Timeout:         5 * time.Second, // the file lock is held by another process
		NoSync:          false,
		NoFreelistSync:  true, // as etcd: cheaper commits, freelist rebuilt on open
		FreelistType:    bolt.FreelistMapType,
		InitialMmapSize: initialMmapSize,
	}
}

// load opens s.path and rebuilds the index; callers hold mu (or own s).
func (s *Store) load() error {
	start := time.Now()
	db, err := bolt.Open(s.path, 0o600, boltOptions())
	if err != nil {
		return fmt.Errorf("mvcc: open %s (is another cadre using this data dir?): %w", s.path, err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bucketKV, bucketMVCC, bucketMeta} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		db.Close()
		return fmt.Errorf("mvcc: init buckets in %s: %w", s.path, err)
	}
	st, err := rebuild(db)
	if err != nil {
		db.Close()
		return fmt.Errorf("mvcc: rebuild index from %s: %w", s.path, err)
	}
	s.db, s.tree = db, st.tree
	s.rev, s.compacted, s.finished = st.rev, st.compacted, st.finished
	s.trimmed, s.trimNext = st.compacted, nil // load trims (or rebuilds from a finished file)
	s.appliedIndex, s.appliedTerm = st.index, st.term
	s.epoch++
	if s.compactProgress != nil {
		close(s.compactProgress) // waiters re-check against the new file
	}
	s.compactProgress = make(chan struct{})
	if s.compactKick != nil {
		s.kickCompactor()
	}
	s.log.Info("mvcc store opened", "path", s.path, "keys", st.tree.Len(),
		"revision", st.rev, "compacted", st.compacted, "compaction-finished", st.finished,
		"applied-index", st.index, "took", time.Since(start))
	return nil
}

type loaded struct {
	tree                     *index
	rev, compacted, finished int64
	index, term              uint64
}

// rebuild scans the kv bucket in revision order and replays it into a new
// index; the current revision is the newest write (or the compacted revision
// if compaction removed that write, e.g. a trailing tombstone). When the
// file holds a compaction whose deletions did not finish (a crash while
// the compactor ran), the index is trimmed to it here, and the compactor
// finishes the deletions.
func rebuild(db *bolt.DB) (loaded, error) {
	st := loaded{tree: newIndex(), rev: 1}
	err := db.View(func(tx *bolt.Tx) error {
		mb, kb := tx.Bucket(bucketMVCC), tx.Bucket(bucketKV)
		if mb == nil || kb == nil {
			return fmt.Errorf("%w: missing bucket %q or %q", ErrCorrupt, bucketMVCC, bucketKV)
		}
		st.index, st.term = getUint(mb, keyAppliedIndex), getUint(mb, keyAppliedTerm)
		st.compacted = int64(getUint(mb, keyCompactedRev))
		st.finished = st.compacted // files from before background compaction
		if mb.Get(keyFinishedCompactRev) != nil {
			st.finished = int64(getUint(mb, keyFinishedCompactRev))
		}
		probe := &keyIndex{}
		c := kb.Cursor()
		for k, v := c.First(); k != nil; k, v = c.Next() {
			r, tomb, err := parseRevKey(k)
			if err != nil {
				return err
			}
			kv, err := decodeKV(v, false)
			if err != nil {
				return fmt.Errorf("revision %d/%d: %w", r.main, r.sub, err)
			}
			probe.key = kv.Key
			ki, ok := st.tree.Get(probe)
			if !ok {
				ki = &keyIndex{key: kv.Key}
				st.tree.ReplaceOrInsert(ki)
			}
			ki.revs = append(ki.revs, revEntry{revision: r, tomb: tomb})
			if tomb {
				ki.create, ki.ver = 0, 0
			} else {
				ki.create, ki.ver = kv.CreateRevision, kv.Version
			}
			st.rev = max(st.rev, r.main)
		}
		st.rev = max(st.rev, st.compacted)
		if st.finished < st.compacted {
			compactIndex(st.tree, st.compacted)
		}
		return nil
	})
	return st, err
}

func getUint(b *bolt.Bucket, k []byte) uint64 {
	if v := b.Get(k); len(v) == 8 {
		return binary.BigEndian.Uint64(v)
	}
	return 0
}

func putUint(b *bolt.Bucket, k []byte, v uint64) error {
	return b.Put(k, binary.BigEndian.AppendUint64(nil, v))
}

// Close aborts an open Batch (the caller must have stopped using it) and
// closes the file.
func (s *Store) Close() error {
	s.hub.shutdown() // first: the hub takes its lock before mu
	s.stopFlusher()
	s.stopCompactor()
	// Commit deferred batches unless an abandoned Batch holds the write
	// transaction (then it is rolled back below; the log has it all).
	var flushErr error
	if s.wmu.TryLock() {
		defer s.wmu.Unlock()
		s.mu.RLock()
		closed := s.closed
		s.mu.RUnlock()
		if !closed {
			flushErr = s.flushLocked()
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	if b := s.batch; b != nil && b.tx != nil {
		_ = b.tx.Rollback()
		b.done = true
	} else if s.wtx != nil {
		_ = s.wtx.Rollback()
	}
	if flushErr != nil {
		s.log.Warn("closing with uncommitted batches; they are replayed from the log on restart", "error", flushErr.Error())
	}
	s.batch = nil
	s.closed = true
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("mvcc: close %s: %w", s.path, err)
	}
	return nil
}

// stopCompactor stops the compactor goroutine. It may be waiting for wmu,
// held by a Batch its caller abandoned (Close's contract allows that):
// such a batch is rolled back here and its lock released, as Close would
// roll it back anyway.
func (s *Store) stopCompactor() {
	s.stopOnce.Do(func() {
		close(s.compactStop)
		s.mu.Lock()
		b := s.batch
		abandoned := b != nil && b.tx != nil && !b.done
		if abandoned {
			_ = b.tx.Rollback()
			b.done = true
			s.batch = nil
			if s.wtxOps > 0 {
				s.log.Warn("closing with uncommitted batches; they are replayed from the log on restart", "pending-writes", s.wtxOps)
			}
			s.wtx, s.wtxArena, s.wtxOps, s.wtxSince = nil, nil, 0, time.Time{}
		}
		s.mu.Unlock()
		if abandoned {
			s.wmu.Unlock()
		}
		<-s.compactDone
	})
}

// Rev returns the current and the compacted revision (0 if never compacted).
func (s *Store) Rev() (current, compacted int64) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.rev, s.compacted
}

// Applied returns the raft index and term whose entries the store contains.
func (s *Store) Applied() (index, term uint64) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.appliedIndex, s.appliedTerm
}

// view opens a read transaction; the caller must Rollback it.
func (s *Store) readTx() (*bolt.Tx, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return nil, ErrClosed
	}
	return s.db.Begin(false)
}

// Meta returns a copy of the committed value SetMeta stored under key, or
// nil if there is none.
func (s *Store) Meta(key string) ([]byte, error) {
	tx, err := s.readTx()
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	return bytes.Clone(tx.Bucket(bucketMeta).Get([]byte(key))), nil
}

// Size returns the size of the database file in bytes.
func (s *Store) Size() int64 {
	tx, err := s.readTx()
	if err != nil {
		return 0
	}
	defer tx.Rollback()
	return tx.Size()
}

// SizeInUse returns Size minus the free pages bbolt can reuse.
func (s *Store) SizeInUse() int64 {
	tx, err := s.readTx()
	if err != nil {
		return 0
	}
	defer tx.Rollback()
	st := tx.DB().Stats()
	return tx.Size() - int64(st.FreePageN+st.PendingPageN)*int64(tx.DB().Info().PageSize)
}

// Snapshot is a consistent, read-only view of the whole database file,
// with the applied raft position it covers. Close it promptly: an open
// snapshot delays bbolt from reusing freed pages and from growing the map.
type Snapshot struct {
	Index, Term uint64 // applied raft index/term stored in this copy
	Size        int64  // bytes WriteTo will write
	tx          *bolt.Tx
}

// OpenSnapshot starts a consistent copy of the database.
func (s *Store) OpenSnapshot() (*Snapshot, error) {
	// The file is the raft snapshot: it must hold everything published.
	tx, err := s.committedReadTx()
	if err != nil {
		return nil, err
	}
	mb := tx.Bucket(bucketMVCC)
	return &Snapshot{Index: getUint(mb, keyAppliedIndex), Term: getUint(mb, keyAppliedTerm), Size: tx.Size(), tx: tx}, nil
}

// WriteTo writes the whole database file as of OpenSnapshot.
func (sn *Snapshot) WriteTo(w io.Writer) (int64, error) { return sn.tx.WriteTo(w) }

// Close releases the snapshot.
func (sn *Snapshot) Close() error { return sn.tx.Rollback() }

// WriteSnapshot writes a consistent copy of the whole database file to w.
func (s *Store) WriteSnapshot(w io.Writer) (int64, error) {
	sn, err := s.OpenSnapshot()
	if err != nil {
		return 0, err
	}
	defer sn.Close()
	n, err := sn.WriteTo(w)
	if err != nil {
		return n, fmt.Errorf("mvcc: write snapshot: %w", err)
	}
	return n, nil
}

// ReplaceWith installs the database file at path (a snapshot received from
// the leader): it checks the file, closes the current database, renames path
// over it and reopens, rebuilding the index. No Batch may be open. Watchers
// then catch up from the new history (or learn it was compacted).
func (s *Store) ReplaceWith(path string) error {
	err := s.replaceWith(path)
	cur, _ := s.Rev()
	s.hub.resync(cur)
	return err
}

func (s *Store) replaceWith(path string) error {
	if err := checkSnapshotFile(path); err != nil {
		return err
	}
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if err := s.flushLocked(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	if s.batch != nil {
		return ErrBatchOpen
	}
	// Close waits for readers still holding read transactions.
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("mvcc: close before installing snapshot: %w", err)
	}
	s.closed = true // until the reopen below succeeds
	if err := os.Rename(path, s.path); err != nil {
		err = fmt.Errorf("mvcc: install snapshot %s as %s (both must be on one filesystem): %w", path, s.path, err)
		if lerr := s.load(); lerr != nil { // keep serving the old data if possible
			return errors.Join(err, lerr)
		}
		s.closed = false
		return err
	}
	if err := syncDir(filepath.Dir(s.path)); err != nil {
		return err
	}
	if err := s.load(); err != nil {
		return err
	}
	s.closed = false
	s.log.Info("mvcc store replaced by snapshot", "from", path, "revision", s.rev, "applied-index", s.appliedIndex)
	return nil
}

// checkSnapshotFile verifies that path is a bbolt file with our buckets, so a
// truncated or foreign file is rejected before the current data is replaced.
func checkSnapshotFile(path string) error {
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		return fmt.Errorf("mvcc: snapshot file %s is not a valid database: %w", path, err)
	}
	defer db.Close()
	return db.View(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bucketKV, bucketMVCC, bucketMeta} {
			if tx.Bucket(b) == nil {
				return fmt.Errorf("%w: snapshot file %s has no %q bucket; expected a file written by WriteSnapshot", ErrCorrupt, path, b)
			}
		}
		return nil
	})
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("mvcc: open dir %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("mvcc: sync dir %s: %w", dir, err)
	}
	return nil
}
