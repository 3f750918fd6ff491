package wal

import (
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

// fiveBatches makes a one-segment WAL with entries 1..5, one Save each,
// and returns its file and records.
func fiveBatches(t *testing.T) (dir, path string, recs []record) {
	t.Helper()
	dir = t.TempDir()
	w := mustCreate(t, dir, Options{SegmentSize: 1 << 16})
	for i := uint64(1); i <= 5; i++ {
		mustSave(t, w, hardst(1, 0, i), []*raftpb.Entry{ent(i, 1, "payload-"+string(rune('a'+i)))})
	}
	w.Close()
	files := segFiles(t, dir)
	if len(files) != 1 {
		t.Fatalf("%d segments", len(files))
	}
	return dir, files[0], fileRecords(t, files[0])
}

// lastEntryRec returns the position of the record of entry idx.
func entryRec(t *testing.T, recs []record, idx uint64) record {
	t.Helper()
	for _, r := range recs {
		if r.typ == recEntry {
			var e raftpb.Entry
			if err := proto.Unmarshal(r.payload, &e); err != nil {
				t.Fatal(err)
			}
			if e.GetIndex() == idx {
				return r
			}
		}
	}
	t.Fatalf("no record for entry %d", idx)
	return record{}
}

func TestTornTailRepaired(t *testing.T) {
	cases := []struct {
		name   string
		damage func(t *testing.T, path string, recs []record)
		want   uint64 // last entry index replayed
	}{
		{"file truncated mid-record", func(t *testing.T, path string, recs []record) {
			r := entryRec(t, recs, 5)
			if err := os.Truncate(path, r.off+headerSize+3); err != nil {
				t.Fatal(err)
			}
		}, 4},
		{"file truncated mid-header", func(t *testing.T, path string, recs []record) {
			r := entryRec(t, recs, 5)
			if err := os.Truncate(path, r.off+5); err != nil {
				t.Fatal(err)
			}
		}, 4},
		{"last record garbage then zeros", func(t *testing.T, path string, recs []record) {
			r := entryRec(t, recs, 5)
			patchFile(t, path, r.off+headerSize, []byte("garbage!"))
		}, 4},
		{"partial garbage record after the end", func(t *testing.T, path string, recs []record) {
			last := recs[len(recs)-1]
			var h [headerSize + 20]byte
			binary.LittleEndian.PutUint32(h[4:8], 100) // claims 100 bytes, 20 written
			binary.LittleEndian.PutUint64(h[8:16], 99<<8|uint64(recEntry))
			copy(h[headerSize:], "twenty bytes of junk")
			patchFile(t, path, last.off+int64(last.size), h[:])
		}, 5},
		{"unfinished batch (end record lost)", func(t *testing.T, path string, recs []record) {
			// Batch 5 is [entry 5, hardstate]; zero its hardstate record.
			last := recs[len(recs)-1]
			patchFile(t, path, last.off, make([]byte, last.size))
		}, 4},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir, path, recs := fiveBatches(t)
			tc.damage(t, path, recs)
			opts, logs := testOpts(t, 1<<16)
			w, rep := mustOpen(t, dir, opts)
			if got := indexes(rep.Entries); len(got) != int(tc.want) || got[len(got)-1][0] != tc.want {
				t.Fatalf("entries %v, want 1..%d", got, tc.want)
			}
			if rep.HardState.GetCommit() != tc.want {
				t.Fatalf("commit %d, want %d (the torn batch's hardstate must be dropped)", rep.HardState.GetCommit(), tc.want)
			}
			out := logs.String()
			if !strings.Contains(out, "repairing torn tail") || !strings.Contains(out, path) || !strings.Contains(out, "offset=") {
				t.Fatalf("repair not logged with file and offset:\n%s", out)
			}
			// The repaired tail is zeros and preallocated again.
			if fi, err := os.Stat(path); err != nil || fi.Size() != 1<<16 {
				t.Fatalf("size after repair %v %v", fi.Size(), err)
			}
			if w.tail%recAlign != 0 || !allZero(readAt(t, path, w.tail, int(1<<16-w.tail))) {
				t.Fatal("tail not zeroed")
			}
			// Appending continues, and the next Open needs no repair.
			next := tc.want + 1
			mustSave(t, w, hardst(2, 0, next), []*raftpb.Entry{ent(next, 2, "after repair")})
			w.Close()
			opts2, logs2 := testOpts(t, 1<<16)
			w, rep = mustOpen(t, dir, opts2)
			defer w.Close()
			if got := indexes(rep.Entries); got[len(got)-1] != [2]uint64{next, 2} {
				t.Fatalf("entries after append %v", got)
			}
			if strings.Contains(logs2.String(), "torn") {
				t.Fatalf("second Open repaired again:\n%s", logs2.String())
			}
		})
	}
}

func TestCorruptionDetected(t *testing.T) {
	cases := []struct {
		name   string
		damage func(t *testing.T, path string, recs []record) int64 // returns the offset Open must name
	}{
		{"flipped payload byte in a middle record", func(t *testing.T, path string, recs []record) int64 {
			r := entryRec(t, recs, 3)
			b := readAt(t, path, r.off+headerSize+2, 1)
			patchFile(t, path, r.off+headerSize+2, []byte{b[0] ^ 0x01})
			return r.off
		}},
		{"flipped crc byte", func(t *testing.T, path string, recs []record) int64 {
			r := entryRec(t, recs, 2)
			b := readAt(t, path, r.off, 1)
			patchFile(t, path, r.off, []byte{b[0] ^ 0x80})
			return r.off
		}},
		{"forged huge length", func(t *testing.T, path string, recs []record) int64 {
			r := entryRec(t, recs, 3)
			patchFile(t, path, r.off+4, []byte{0xf0, 0xff, 0xff, 0xff})
			return r.off
		}},
		{"forged length within file", func(t *testing.T, path string, recs []record) int64 {
			r := entryRec(t, recs, 3)
			patchFile(t, path, r.off+4, []byte{0x00, 0x10, 0x00, 0x00})
			return r.off
		}},
		{"zeroed header of a middle record", func(t *testing.T, path string, recs []record) int64 {
			r := entryRec(t, recs, 2)
			patchFile(t, path, r.off, make([]byte, headerSize))
			return r.off
		}},
		{"data after the end in a middle batch's place", func(t *testing.T, path string, recs []record) int64 {
			r := entryRec(t, recs, 4)
			patchFile(t, path, r.off, make([]byte, r.size)) // whole record gone, hardstate of batch 4 remains
			return r.off
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir, path, recs := fiveBatches(t)
			off := tc.damage(t, path, recs)
			_, _, err := Open(dir, Options{})
			ce := wantCorrupt(t, err, path, off)
			if !strings.Contains(ce.Error(), path) || !strings.Contains(ce.Error(), "offset") {
				t.Fatalf("message does not name file and offset: %v", ce)
			}
		})
	}
}

// In a segment that is not the last, even damage to its final record is
// corruption: it was fsynced before the next segment was created.
func TestCorruptionInOlderSegment(t *testing.T) {
	dir := t.TempDir()
	w := mustCreate(t, dir, Options{SegmentSize: 1024})
	for i := uint64(1); i <= 60; i++ {
		mustSave(t, w, nil, []*raftpb.Entry{ent(i, 1, "0123456789abcdef0123456789abcdef")})
	}
	w.Close()
	files := segFiles(t, dir)
	if len(files) < 3 {
		t.Fatalf("%d segments", len(files))
	}
	recs := fileRecords(t, files[0])
	last := recs[len(recs)-1]
	b := readAt(t, files[0], last.off+headerSize, 1)
	patchFile(t, files[0], last.off+headerSize, []byte{b[0] ^ 0xff})
	_, _, err := Open(dir, Options{SegmentSize: 1024})
	wantCorrupt(t, err, files[0], last.off)
}

// rawSegment writes a segment file holding the given records, each its own
// batch, as a test-only way to express logs Save refuses to write.
func rawSegment(t *testing.T, dir string, msgs ...proto.Message) (string, []int64) {
	t.Helper()
	buf, err := appendBytes(nil, recMetadata, 1, true, []byte("meta"))
	if err != nil {
		t.Fatal(err)
	}
	var offs []int64
	for i, m := range msgs {
		typ := recEntry
		switch m.(type) {
		case *raftpb.HardState:
			typ = recHardState
		case *raftpb.SnapshotMetadata:
			typ = recSnapshot
		}
		offs = append(offs, int64(len(buf)))
		if buf, err = appendProto(buf, typ, uint64(i+2), true, m); err != nil {
			t.Fatal(err)
		}
	}
	p := filepath.Join(dir, segmentName(0, 1))
	if err := os.WriteFile(p, append(buf, make([]byte, 256)...), 0o600); err != nil {
		t.Fatal(err)
	}
	return p, offs
}

func TestReplayRejectsBadLogs(t *testing.T) {
	cases := []struct {
		name string
		msgs []proto.Message
		bad  int // index into msgs whose offset the error names; -1: a valid log
		want [][2]uint64
	}{
		{"valid with snapshot jump", []proto.Message{ent(1, 1, ""), snapMeta(9, 1), ent(10, 2, "")}, -1, [][2]uint64{{10, 2}}},
		{"valid log may start anywhere after a released prefix",
			[]proto.Message{snapMeta(4, 1), ent(5, 1, ""), ent(6, 1, "")}, -1, [][2]uint64{{5, 1}, {6, 1}}},
		{"index gap", []proto.Message{ent(1, 1, ""), ent(2, 1, ""), ent(4, 1, "")}, 2, nil},
		{"gap after snapshot", []proto.Message{ent(1, 1, ""), snapMeta(1, 1), ent(3, 1, "")}, 2, nil},
		{"backwards beyond snapshot", []proto.Message{ent(1, 1, ""), ent(2, 1, ""), snapMeta(2, 1), ent(2, 2, "")}, 3, nil},
		{"snapshot goes back", []proto.Message{snapMeta(5, 1), snapMeta(4, 1)}, 1, nil},
		{"entries do not reach the snapshot", []proto.Message{ent(1, 1, ""), ent(2, 1, "")}, -1, [][2]uint64{{1, 1}, {2, 1}}},
		{"first entry far past snapshot", []proto.Message{snapMeta(2, 1), ent(7, 1, "")}, 1, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			p, offs := rawSegment(t, dir, tc.msgs...)
			w, rep, err := Open(dir, Options{SegmentSize: 4096})
			if tc.bad < 0 {
				if err != nil {
					t.Fatalf("Open: %v", err)
				}
				defer w.Close()
				if got := indexes(rep.Entries); !reflect.DeepEqual(got, tc.want) {
					t.Fatalf("entries %v, want %v", got, tc.want)
				}
				return
			}
			wantCorrupt(t, err, p, offs[tc.bad])
		})
	}
}

func TestForgedLengthNoPanic(t *testing.T) {
	// A lone header at offset 0 claiming 4 GiB must not allocate or panic.
	dir := t.TempDir()
	var h [headerSize]byte
	binary.LittleEndian.PutUint32(h[4:8], 0xffffffff)
	binary.LittleEndian.PutUint64(h[8:16], 1<<8|uint64(recMetadata))
	p := filepath.Join(dir, segmentName(0, 1))
	if err := os.WriteFile(p, h[:], 0o600); err != nil {
		t.Fatal(err)
	}
	_, _, err := Open(dir, Options{})
	ce := wantCorrupt(t, err, p, 0)
	if !strings.Contains(ce.Reason, "limit") {
		t.Fatalf("reason %q", ce.Reason)
	}
	if !errors.Is(err, ErrCorrupt) {
		t.Fatal("not ErrCorrupt")
	}
}
