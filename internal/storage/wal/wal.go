package wal

import (
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"go.etcd.io/raft/v3/raftpb"
)

var (
	// ErrCorrupt is wrapped by every *CorruptError.
	ErrCorrupt = errors.New("wal: corrupt record")
	// ErrExist is returned by Create when the directory already holds segments.
	ErrExist = errors.New("wal: already exists")
	// ErrNotFound is returned by Open when the directory holds no segments.
	ErrNotFound = errors.New("wal: no segment files")
	// ErrInvalid is returned when a caller passes data the log cannot hold
	// (index gap, oversize record). Nothing was written; the WAL stays usable.
	ErrInvalid = errors.New("wal: invalid argument")
	// ErrClosed is returned after Close.
	ErrClosed = errors.New("wal: closed")
)

// CorruptError reports damaged or inconsistent data that Open cannot
// repair without losing acknowledged writes.
type CorruptError struct {
	File   string
	Offset int64
	Reason string
}

func (e *CorruptError) Error() string {
	return fmt.Sprintf("wal: corrupt record in %s at offset %d: %s; restore this member from a healthy peer or a backup",
		e.File, e.Offset, e.Reason)
}

func (e *CorruptError) Unwrap() error { return ErrCorrupt }

// Options configures a WAL.
type Options struct {
	Logger      *slog.Logger          // nil => discard
	SegmentSize int64                 // preallocated size of each segment file; 0 => 64 MiB
	OnFsync     func(d time.Duration) // optional metrics hook, called after each data fsync

	fs fileSystem // tests inject faults here; nil => the OS
}

const (
	defaultSegmentSize = 64 << 20
	minSegmentSize     = 512
	bufKeepLimit       = 4 << 20 // larger batch buffers are not kept for reuse
)

func (o Options) withDefaults(dir string) Options {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.SegmentSize == 0 {
		o.SegmentSize = defaultSegmentSize
	}
	o.SegmentSize = max(o.SegmentSize, minSegmentSize)
	o.SegmentSize += int64(padLen(int(o.SegmentSize % recAlign)))
	if o.fs == nil {
		o.fs = defaultFS(dir)
	}
	return o
}

// Replay is the state Open recovered.
type Replay struct {
	Metadata  []byte
	HardState *raftpb.HardState        // never nil
	Snapshot  *raftpb.SnapshotMetadata // latest snapshot record, nil if none
	Entries   []*raftpb.Entry          // Index > Snapshot index, contiguous
}

type segment struct {
	seq, first uint64
	maxIndex   uint64 // highest entry index written to it
}

// WAL is an append-only raft log. It is safe for concurrent use.
type WAL struct {
	mu   sync.Mutex
	dir  string
	opts Options
	fs   fileSystem
	log  *slog.Logger

	err    error // sticky: set when a write's outcome is unknown
	closed bool

	segs      []segment // oldest first; the last is open as f
	f         file
	tail      int64 // next write offset in f
	headerEnd int64 // end of f's first batch
	nextBatch uint64

	metadata  []byte
	hs        hardState
	snap      *raftpb.SnapshotMetadata
	snapIndex uint64
	lastIndex uint64 // max(last entry index, snapIndex)

	buf, hdrBuf []byte
}

// Exist reports whether dir holds at least one segment file.
func Exist(dir string) bool {
	names, err := osFS{}.List(dir)
	if err != nil {
		return false
	}
	return slices.ContainsFunc(names, func(n string) bool { _, _, ok := parseSegmentName(n); return ok })
}

// Create makes dir (0700) and a first segment holding metadata. It fails
// with ErrExist if dir already holds segments.
func Create(dir string, metadata []byte, opts Options) (*WAL, error) {
	opts = opts.withDefaults(dir)
	if names, err := opts.fs.List(dir); err == nil {
		if seqs, _ := segmentsIn(names); len(seqs) > 0 {
			return nil, fmt.Errorf("%w: %s holds WAL segments; use Open to reuse them or remove the directory", ErrExist, dir)
		}
	}
	if len(metadata) > maxPayload {
		return nil, fmt.Errorf("%w: metadata is %d bytes, the limit is %d", ErrInvalid, len(metadata), maxPayload)
	}
	if err := opts.fs.MkdirAll(dir); err != nil {
		return nil, fmt.Errorf("wal: create %s: %w", dir, err)
	}
	if err := opts.fs.SyncDir(filepath.Dir(filepath.Clean(dir))); err != nil {
		return nil, fmt.Errorf("wal: sync parent of %s: %w", dir, err)
	}
	w := newWAL(dir, opts)
	w.metadata = slices.Clone(metadata)
	hdr, err := w.appendHeader(nil, 1, true)
	if err != nil {
		return nil, err
	}
	seg := segment{seq: 0, first: 1}
	f, err := w.installSegment(seg, hdr)
	if err != nil {
		return nil, err
	}
	w.segs = []segment{seg}
	w.f, w.tail, w.headerEnd, w.nextBatch = f, int64(len(hdr)), int64(len(hdr)), 2
	w.log.Info("wal: created", "dir", dir, "segment", segmentName(seg.seq, seg.first))
	return w, nil
}

func newWAL(dir string, opts Options) *WAL {
	return &WAL{dir: dir, opts: opts, fs: opts.fs, log: opts.Logger}
}

// segmentsIn returns the segments named in names, ordered, and the names
// of leftover temporary files.
func segmentsIn(names []string) (segs []segment, tmps []string) {
	for _, n := range names {
		if seq, first, ok := parseSegmentName(n); ok {
			segs = append(segs, segment{seq: seq, first: first})
		} else if _, _, ok := parseSegmentName(strings.TrimSuffix(n, ".tmp")); ok && strings.HasSuffix(n, tmpSuffix) {
			tmps = append(tmps, n)
		}
	}
	slices.SortFunc(segs, func(a, b segment) int { return cmpU64(a.seq, b.seq) })
	return segs, tmps
}

func cmpU64(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func (w *WAL) path(s segment) string { return filepath.Join(w.dir, segmentName(s.seq, s.first)) }

// Open replays every segment in dir, repairs a torn tail in the last one and
// returns a WAL positioned for appending.
func Open(dir string, opts Options) (*WAL, *Replay, error) {
	opts = opts.withDefaults(dir)
	w := newWAL(dir, opts)
	names, err := w.fs.List(dir)
	if err != nil {
		return nil, nil, fmt.Errorf("wal: open %s: %w", dir, err)
	}
	segs, tmps := segmentsIn(names)
	if len(segs) == 0 {
		return nil, nil, fmt.Errorf("%w in %s; use Create for a new member", ErrNotFound, dir)
	}
	if err := w.removeTemps(tmps); err != nil {
		return nil, nil, err
	}
	st := &replayState{}
	var last segmentResult
	for i := range segs {
		p := w.path(segs[i])
		if i > 0 && segs[i].seq != segs[i-1].seq+1 {
			return nil, nil, corrupt(p, 0, "segment sequence jumps from %d to %d: a segment file is missing", segs[i-1].seq, segs[i].seq)
		}
		data, err := w.fs.ReadFile(p)
		if err != nil {
			return nil, nil, fmt.Errorf("wal: read %s: %w", p, err)
		}
		res, err := st.readSegment(p, data, i == len(segs)-1)
		if err != nil {
			return nil, nil, err
		}
		segs[i].maxIndex = res.maxIndex
		last = res
		if i == len(segs)-1 {
			last.dirty = last.dirty || int64(len(data)) < opts.SegmentSize
		}
	}
	if err := st.finish(); err != nil {
		return nil, nil, err
	}
	f, err := w.openTail(w.path(segs[len(segs)-1]), last)
	if err != nil {
		return nil, nil, err
	}
	w.segs, w.f, w.tail, w.headerEnd = segs, f, last.cut, last.headerEnd
	w.nextBatch = st.lastBatch + 1
	w.metadata, w.hs, w.snap, w.snapIndex = st.metadata, st.hs, st.snap, st.snapIndex
	w.lastIndex = st.lastIndex()
	rep := &Replay{Metadata: st.metadata, HardState: st.hs.proto(), Entries: st.ents}
	if st.snap != nil {
		rep.Snapshot = raftpb.EnsureSnapshotMetadata(cloneSnap(st.snap))
	}
	w.log.Info("wal: opened", "dir", dir, "segments", len(segs), "entries", len(st.ents),
		"snapshot_index", st.snapIndex, "last_index", w.lastIndex)
	return w, rep, nil
}

func (w *WAL) removeTemps(tmps []string) error {
	for _, n := range tmps {
		p := filepath.Join(w.dir, n)
		w.log.Warn("wal: removing unfinished segment file", "file", p)
		if err := w.fs.Remove(p); err != nil {
			return fmt.Errorf("wal: remove %s: %w", p, err)
		}
	}
	if len(tmps) > 0 {
		if err := w.fs.SyncDir(w.dir); err != nil {
			return fmt.Errorf("wal: sync %s: %w", w.dir, err)
		}
	}
	return nil
}

// openTail opens the last segment for appending, zeroing a torn tail and
// restoring the preallocation if needed.
func (w *WAL) openTail(p string, res segmentResult) (file, error) {
	f, err := w.fs.OpenRW(p)
	if err != nil {
		return nil, fmt.Errorf("wal: open %s: %w", p, err)
	}
	if !res.dirty {
		return f, nil
	}
	if res.reason != "" {
		w.log.Warn("wal: repairing torn tail", "file", p, "offset", res.cut, "reason", res.reason)
	}
	err = f.Truncate(res.cut)
	if err == nil {
		err = f.Allocate(max(res.cut, w.opts.SegmentSize))
	}
	if err == nil {
		err = w.sync(f)
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("wal: repair %s at offset %d: %w", p, res.cut, err)
	}
	return f, nil
}

func (w *WAL) usable() error {
	if w.closed {
		return ErrClosed
	}
	return w.err
}

func (w *WAL) fail(err error) error {
	w.err = err
	w.log.Error("wal: write failed; refusing further writes", "err", err)
	return err
}

func (w *WAL) sync(f file) error {
	start := time.Now()
	err := f.Sync()
	if w.opts.OnFsync != nil {
		w.opts.OnFsync(time.Since(start))
	}
	return err
}
