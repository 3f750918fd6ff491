package wal

import (
	"fmt"
	"io"

	"go.etcd.io/raft/v3/raftpb"
)

// Save appends ents and, if it changed, hs as one write followed by one
// fsync. Entries must continue the log: the first index may rewrite an
// existing one (raft truncation) but must be above the snapshot index and
// at most lastIndex+1. Nothing to write means no I/O.
//
// If the write or fsync fails, the WAL returns that error from every later
// write: what reached the disk is unknown, so the member must stop.
func (w *WAL) Save(hs *raftpb.HardState, ents []*raftpb.Entry) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if err := w.usable(); err != nil {
		return err
	}
	hsChanged := hs != nil && hardStateOf(hs) != w.hs
	if !hsChanged && len(ents) == 0 {
		return nil
	}
	if err := w.checkEntries(ents); err != nil {
		return err
	}
	// Entries go before the hardstate so that a replay never sees a commit
	// index beyond the entries written with it.
	buf, batch := w.buf[:0], w.nextBatch
	var err error
	for i, e := range ents {
		if buf, err = appendProto(buf, recEntry, batch, !hsChanged && i == len(ents)-1, e); err != nil {
			return err
		}
	}
	if hsChanged {
		if buf, err = appendProto(buf, recHardState, batch, true, hs); err != nil {
			return err
		}
	}
	first := w.lastIndex + 1
	if len(ents) > 0 {
		first = ents[0].GetIndex()
	}
	// Only new entries and a new term or vote must be durable before raft
	// goes on (raft.MustSync). A batch that only moves the commit index is
	// written without an fsync, as etcd does: a lost commit index is learnt
	// again from the leader, and the next fsync makes this write durable too.
	nh := w.hs
	if hsChanged {
		nh = hardStateOf(hs)
	}
	mustSync := len(ents) > 0 || nh.term != w.hs.term || nh.vote != w.hs.vote
	if err := w.writeBatch(buf, first, mustSync); err != nil {
		return err
	}
	if hsChanged {
		w.hs = hardStateOf(hs)
	}
	if n := len(ents); n > 0 {
		w.lastIndex = ents[n-1].GetIndex()
		tail := &w.segs[len(w.segs)-1]
		tail.maxIndex = max(tail.maxIndex, w.lastIndex)
	}
	return nil
}

func (w *WAL) checkEntries(ents []*raftpb.Entry) error {
	var prev uint64
	for i, e := range ents {
		if e == nil {
			return fmt.Errorf("%w: entry %d is nil", ErrInvalid, i)
		}
		idx := e.GetIndex()
		if i == 0 && (idx <= w.snapIndex || idx > w.lastIndex+1) {
			return fmt.Errorf("%w: first entry index %d must be in [%d, %d] (snapshot index %d, last index %d)",
				ErrInvalid, idx, w.snapIndex+1, w.lastIndex+1, w.snapIndex, w.lastIndex)
		}
		if i > 0 && idx != prev+1 {
			return fmt.Errorf("%w: entry index %d follows %d; entries must be contiguous", ErrInvalid, idx, prev)
		}
		prev = idx
	}
	return nil
}

// SaveSnapshot appends a snapshot record and fsyncs. Its index may not go
// below the previous snapshot's. Entries at or below it are no longer
// replayed; those above it are kept.
func (w *WAL) SaveSnapshot(meta *raftpb.SnapshotMetadata) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if err := w.usable(); err != nil {
		return err
	}
	if meta == nil {
		return fmt.Errorf("%w: nil snapshot metadata", ErrInvalid)
	}
	idx := meta.GetIndex()
	if idx < w.snapIndex {
		return fmt.Errorf("%w: snapshot index %d is below the saved snapshot index %d", ErrInvalid, idx, w.snapIndex)
	}
	buf, err := appendProto(w.buf[:0], recSnapshot, w.nextBatch, true, meta)
	if err != nil {
		return err
	}
	if err := w.writeBatch(buf, max(w.lastIndex, idx)+1, true); err != nil {
		return err
	}
	w.snap = raftpb.EnsureSnapshotMetadata(cloneSnap(meta))
	w.snapIndex = idx
	w.lastIndex = max(w.lastIndex, idx)
	return nil
}

// writeBatch writes buf at the tail (cutting first if the segment is full),
// fsyncs when mustSync (a new segment is always synced), and advances the
// batch number. first names a new segment.
func (w *WAL) writeBatch(buf []byte, first uint64, mustSync bool) error {
	defer w.keepBuf(buf)
	if w.tail+int64(len(buf)) > w.opts.SegmentSize && w.tail > w.headerEnd {
		return w.cut(buf, first)
	}
	p := w.path(w.segs[len(w.segs)-1])
	n, err := w.f.WriteAt(buf, w.tail)
	if err == nil && n < len(buf) {
		err = io.ErrShortWrite
	}
	if err != nil {
		return w.fail(fmt.Errorf("wal: write %s at offset %d: %w", p, w.tail, err))
	}
	if mustSync {
		if err := w.sync(w.f); err != nil {
			return w.fail(fmt.Errorf("wal: fsync %s: %w", p, err))
		}
	}
	w.tail += int64(len(buf))
	w.nextBatch++
	return nil
}

func (w *WAL) keepBuf(buf []byte) {
	if cap(buf) > bufKeepLimit {
		buf = nil
	}
	w.buf = buf[:0]
}

// cut starts a new segment whose first batch is the header records
// (metadata, hardstate, snapshot) followed by buf, so the segment replays
// without its predecessors.
func (w *WAL) cut(buf []byte, first uint64) error {
	hdr, err := w.appendHeader(w.hdrBuf[:0], w.nextBatch, false)
	if err != nil {
		return w.fail(err)
	}
	headerEnd := int64(len(hdr))
	hdr = append(hdr, buf...)
	if cap(hdr) <= bufKeepLimit {
		w.hdrBuf = hdr[:0]
	} else {
		w.hdrBuf = nil
	}
	seg := segment{seq: w.segs[len(w.segs)-1].seq + 1, first: first}
	f, err := w.installSegment(seg, hdr)
	if err != nil {
		return w.fail(err)
	}
	old := w.f
	w.segs = append(w.segs, seg)
	w.f, w.tail, w.headerEnd = f, int64(len(hdr)), headerEnd
	w.nextBatch++
	if err := old.Close(); err != nil {
		// Its data was fsynced by the Save that wrote it.
		w.log.Warn("wal: closing previous segment", "err", err)
	}
	w.log.Debug("wal: cut segment", "file", w.path(seg))
	return nil
}

// installSegment writes data into a fresh preallocated file under a
// temporary name, fsyncs it, renames it into place and fsyncs the
// directory, so a segment never appears half written.
func (w *WAL) installSegment(seg segment, data []byte) (file, error) {
	p := w.path(seg)
	tmp := p + ".tmp"
	f, err := w.fs.Create(tmp)
	if err != nil {
		return nil, fmt.Errorf("wal: create %s: %w", tmp, err)
	}
	err = f.Allocate(w.opts.SegmentSize)
	if err == nil {
		var n int
		n, err = f.WriteAt(data, 0)
		if err == nil && n < len(data) {
			err = io.ErrShortWrite
		}
	}
	if err == nil {
		err = w.sync(f)
	}
	if err == nil {
		err = w.fs.Rename(tmp, p)
	}
	if err != nil {
		f.Close()
		w.fs.Remove(tmp) // best effort; Open removes leftovers too
		return nil, fmt.Errorf("wal: create segment %s: %w", p, err)
	}
	if err := w.fs.SyncDir(w.dir); err != nil {
		f.Close()
		return nil, fmt.Errorf("wal: sync %s: %w", w.dir, err)
	}
	return f, nil
}

// appendHeader appends the records every segment starts with.
func (w *WAL) appendHeader(buf []byte, batch uint64, end bool) ([]byte, error) {
	buf, err := appendBytes(buf, recMetadata, batch, false, w.metadata)
	if err != nil {
		return nil, err
	}
	if buf, err = appendProto(buf, recHardState, batch, end && w.snap == nil, w.hs.proto()); err != nil {
		return nil, err
	}
	if w.snap != nil {
		if buf, err = appendProto(buf, recSnapshot, batch, end, w.snap); err != nil {
			return nil, err
		}
	}
	return buf, nil
}

// ReleaseTo deletes the oldest segments while every entry they hold has an
// index below index and a later segment exists. index is capped at the
// latest snapshot index + 1, so entries Open must replay after the snapshot
// are never released; metadata, hardstate and snapshot live on in the
// header of every later segment.
func (w *WAL) ReleaseTo(index uint64) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if err := w.usable(); err != nil {
		return err
	}
	index = min(index, w.snapIndex+1)
	for len(w.segs) > 1 && w.segs[0].maxIndex < index {
		p := w.path(w.segs[0])
		if err := w.fs.Remove(p); err != nil {
			return fmt.Errorf("wal: release %s: %w", p, err)
		}
		// One directory sync per file keeps the survivors a suffix after
		// a crash; Open refuses a sequence gap.
		if err := w.fs.SyncDir(w.dir); err != nil {
			return fmt.Errorf("wal: sync %s after releasing %s: %w", w.dir, p, err)
		}
		w.segs = w.segs[1:]
		w.log.Debug("wal: released segment", "file", p, "release_to", index)
	}
	return nil
}

// Close closes the tail segment. Every Save already fsynced its data.
func (w *WAL) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return ErrClosed
	}
	w.closed = true
	if err := w.f.Close(); err != nil {
		return fmt.Errorf("wal: close: %w", err)
	}
	return nil
}
