package wal

import (
	"bytes"
	"encoding/binary"
	"fmt"

	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

// hardState is the comparable form of raftpb.HardState.
type hardState struct{ term, vote, commit uint64 }

func hardStateOf(hs *raftpb.HardState) hardState {
	return hardState{hs.GetTerm(), hs.GetVote(), hs.GetCommit()}
}

func (h hardState) proto() *raftpb.HardState {
	return &raftpb.HardState{Term: proto.Uint64(h.term), Vote: proto.Uint64(h.vote), Commit: proto.Uint64(h.commit)}
}

// replayState folds records, in file order, into the state Open returns.
// It does no I/O, so the fuzz target drives it directly.
type replayState struct {
	metadata  []byte
	haveMeta  bool
	hs        hardState
	snap      *raftpb.SnapshotMetadata
	snapIndex uint64
	ents      []*raftpb.Entry // contiguous indexes, all > snapIndex
	seenEntry bool
	lastBatch uint64

	// where ents[0] came from when it was not reached by contiguous
	// appends, for the error finish reports
	firstFile string
	firstOff  int64
}

// segmentResult describes one decoded segment.
type segmentResult struct {
	maxIndex  uint64 // highest entry index held, 0 if none
	cut       int64  // end of the last complete batch: where appends go
	headerEnd int64  // end of the segment's first batch
	dirty     bool   // last segment only: bytes after cut must be zeroed
	reason    string // why it is dirty
}

func corrupt(file string, off int64, format string, args ...any) *CorruptError {
	return &CorruptError{File: file, Offset: off, Reason: fmt.Sprintf(format, args...)}
}

// readSegment decodes one segment and applies its complete batches. last
// selects the torn-tail rule (see doc.go); every other defect is corruption.
func (st *replayState) readSegment(path string, data []byte, last bool) (segmentResult, error) {
	var (
		res      segmentResult
		pending  []record // records of the batch not yet ended
		prev     record
		nRecs    int
		stop     int    // offset where decoding stopped
		stopWhy  string // "" when it stopped at an all-zero header
		complete bool   // at least one batch ended in this segment
	)
	for off := 0; ; {
		rec, why := parseRecord(data, off)
		if why != "" || rec.size == 0 {
			stop, stopWhy = off, why
			break
		}
		// A record with a valid CRC is never torn-write debris (files are
		// fresh zeros), so order violations are corruption even at the tail.
		switch {
		case nRecs == 0 && rec.typ != recMetadata:
			return res, corrupt(path, rec.off, "segment starts with record type %d, want metadata (%d)", rec.typ, recMetadata)
		case nRecs == 0 && rec.batch <= st.lastBatch:
			return res, corrupt(path, rec.off, "batch number %d does not follow %d of the previous segment", rec.batch, st.lastBatch)
		case nRecs > 0 && prev.end && rec.batch <= prev.batch:
			return res, corrupt(path, rec.off, "batch number %d does not follow %d", rec.batch, prev.batch)
		case nRecs > 0 && !prev.end && rec.batch != prev.batch:
			return res, corrupt(path, rec.off, "record of batch %d inside unfinished batch %d", rec.batch, prev.batch)
		}
		pending = append(pending, rec)
		prev = rec
		nRecs++
		off += rec.size
		if !rec.end {
			continue
		}
		for _, r := range pending {
			if err := st.apply(path, r, &res); err != nil {
				return res, err
			}
		}
		pending = pending[:0]
		st.lastBatch = rec.batch
		res.cut = int64(off)
		if !complete {
			res.headerEnd = res.cut
			complete = true
		}
	}

	if !last {
		switch {
		case stopWhy != "":
			return res, corrupt(path, int64(stop), "%s", stopWhy)
		case len(pending) > 0:
			return res, corrupt(path, pending[0].off, "segment ends inside unfinished batch %d", pending[0].batch)
		case !complete:
			return res, corrupt(path, 0, "segment holds no records")
		case !allZero(data[stop:]):
			return res, corrupt(path, int64(stop), "non-zero bytes after the end of records")
		}
		return res, nil
	}

	// Last segment: everything after the last complete batch is the
	// unacknowledged tail of a write that may have been torn, unless data
	// from a later write lies beyond it.
	if !complete {
		why := stopWhy
		if why == "" {
			why = "segment holds no complete batch"
		}
		return res, corrupt(path, int64(stop), "%s", why)
	}
	allowed := st.lastBatch + 1
	if p, b := findLaterRecord(data, int(res.cut), allowed); p >= 0 {
		why := stopWhy
		if why == "" {
			why = "records end early"
		}
		return res, corrupt(path, int64(stop), "%s, but a valid record of later batch %d follows at offset %d", why, b, p)
	}
	if !allZero(data[res.cut:]) {
		res.dirty = true
		switch {
		case stopWhy != "":
			res.reason = fmt.Sprintf("torn record at offset %d: %s", stop, stopWhy)
		case len(pending) > 0:
			res.reason = fmt.Sprintf("unfinished batch %d", pending[0].batch)
		default:
			res.reason = "partial write after the end of records"
		}
	}
	return res, nil
}

// scanBudget bounds the CRC work findLaterRecord may do, so crafted tails
// cannot make Open quadratic.
const scanBudget int64 = 4 << 30

// findLaterRecord looks at every aligned offset from 'from' for a record
// with a valid CRC and a batch number above allowed. Such a record was
// written after an acknowledged write that the damage sits in. If the scan
// budget runs out it reports from, erring on the side of an error.
func findLaterRecord(data []byte, from int, allowed uint64) (int, uint64) {
	budget := scanBudget
	for p := from; p+headerSize <= len(data); p += recAlign {
		if !validType(recordType(data[p+8] &^ flagEnd)) {
			continue
		}
		budget -= headerSize + int64(binary.LittleEndian.Uint32(data[p+4:p+8]))
		if budget < 0 {
			return from, allowed + 1
		}
		if rec, why := parseRecord(data, p); why == "" && rec.batch > allowed {
			return p, rec.batch
		}
	}
	return -1, 0
}

func (st *replayState) apply(path string, r record, res *segmentResult) error {
	bad := func(format string, args ...any) error { return corrupt(path, r.off, format, args...) }
	switch r.typ {
	case recMetadata:
		if !st.haveMeta {
			st.metadata = bytes.Clone(r.payload)
			st.haveMeta = true
		} else if !bytes.Equal(st.metadata, r.payload) {
			return bad("metadata differs from the first segment's")
		}
	case recHardState:
		var hs raftpb.HardState
		if err := proto.Unmarshal(r.payload, &hs); err != nil {
			return bad("undecodable hardstate: %v", err)
		}
		st.hs = hardStateOf(&hs)
	case recSnapshot:
		m := new(raftpb.SnapshotMetadata)
		if err := proto.Unmarshal(r.payload, m); err != nil {
			return bad("undecodable snapshot record: %v", err)
		}
		idx := m.GetIndex()
		if idx < st.snapIndex {
			return bad("snapshot index %d goes back from %d", idx, st.snapIndex)
		}
		if n := len(st.ents); n > 0 {
			switch first := st.ents[0].GetIndex(); {
			case idx >= st.ents[n-1].GetIndex():
				st.ents = nil
			case idx >= first:
				st.ents = st.ents[idx-first+1:]
			}
		}
		st.snap, st.snapIndex = m, idx
	case recEntry:
		e := new(raftpb.Entry)
		if err := proto.Unmarshal(r.payload, e); err != nil {
			return bad("undecodable entry: %v", err)
		}
		if err := st.addEntry(path, r.off, e); err != nil {
			return err
		}
		res.maxIndex = max(res.maxIndex, e.GetIndex())
	}
	return nil
}

// addEntry applies raft's log rule: an index already present overwrites it
// and drops everything after it; otherwise the index must be the next one.
func (st *replayState) addEntry(path string, off int64, e *raftpb.Entry) error {
	idx := e.GetIndex()
	if idx <= st.snapIndex {
		return corrupt(path, off, "entry index %d is not after snapshot index %d", idx, st.snapIndex)
	}
	n := len(st.ents)
	switch {
	case n == 0:
		// The very first entry may start anywhere: older segments holding
		// its predecessors may have been released. finish checks the result.
		if st.seenEntry && idx != st.snapIndex+1 {
			return corrupt(path, off, "entry index %d leaves a gap after snapshot index %d", idx, st.snapIndex)
		}
		st.ents = append(st.ents, e)
		st.firstFile, st.firstOff = path, off
	case idx > st.ents[n-1].GetIndex()+1:
		return corrupt(path, off, "entry index %d leaves a gap after index %d", idx, st.ents[n-1].GetIndex())
	case idx >= st.ents[0].GetIndex():
		st.ents = append(st.ents[:idx-st.ents[0].GetIndex()], e)
	default:
		// Rewrites entries below the oldest one still held (released).
		st.ents = append(st.ents[:0], e)
		st.firstFile, st.firstOff = path, off
	}
	st.seenEntry = true
	return nil
}

// finish checks that the surviving entries continue from the snapshot.
func (st *replayState) finish() error {
	if len(st.ents) > 0 && st.ents[0].GetIndex() != st.snapIndex+1 {
		return corrupt(st.firstFile, st.firstOff, "entries start at index %d but the latest snapshot is at index %d",
			st.ents[0].GetIndex(), st.snapIndex)
	}
	return nil
}

// lastIndex is the highest index the log covers, by entry or snapshot.
func (st *replayState) lastIndex() uint64 {
	if n := len(st.ents); n > 0 {
		return st.ents[n-1].GetIndex()
	}
	return st.snapIndex
}

func cloneSnap(m *raftpb.SnapshotMetadata) *raftpb.SnapshotMetadata {
	return proto.Clone(m).(*raftpb.SnapshotMetadata)
}
