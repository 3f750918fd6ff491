package wal

import (
	"errors"
	"os"
	"testing"
)

// FuzzDecode feeds arbitrary bytes to the segment decoder as the last and
// as a middle segment. It must never panic; it must either return a
// *CorruptError or a replay that satisfies the log invariants, and
// repairing the tail it reports must give the same replay with nothing
// left to repair.
func FuzzDecode(f *testing.F) {
	dir := f.TempDir()
	w := mustCreate(f, dir, Options{SegmentSize: 4096})
	mustSave(f, w, hardst(1, 1, 1), ents(1, 3, 1))
	if err := w.SaveSnapshot(snapMeta(2, 1, 1)); err != nil {
		f.Fatal(err)
	}
	mustSave(f, w, hardst(2, 1, 3), ents(3, 5, 2))
	w.Close()
	seg, err := os.ReadFile(segFiles(f, dir)[0])
	if err != nil {
		f.Fatal(err)
	}
	end := int(w.tail)
	f.Add(seg[:end])
	f.Add(seg[:end+64])
	f.Add(seg[:end-5])
	f.Add(seg[:40])
	f.Add([]byte{})
	f.Add(make([]byte, 64))

	f.Fuzz(func(t *testing.T, data []byte) {
		st := &replayState{}
		res, err := st.readSegment("fuzz.wal", data, true)
		if err == nil {
			err = st.finish()
		}
		midSt := &replayState{}
		_, midErr := midSt.readSegment("fuzz.wal", data, false)
		if midErr == nil {
			midErr = midSt.finish()
		}
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("error %v is not ErrCorrupt", err)
			}
			if midErr == nil {
				t.Fatal("accepted as a middle segment but rejected as the last")
			}
			return
		}
		checkReplay(t, st)
		if res.cut < 0 || res.cut > int64(len(data)) || res.cut%recAlign != 0 {
			t.Fatalf("cut %d outside data of %d bytes", res.cut, len(data))
		}
		if midErr == nil && res.dirty {
			t.Fatal("clean as a middle segment but dirty as the last")
		}
		repaired := make([]byte, len(data))
		copy(repaired, data[:res.cut])
		st2 := &replayState{}
		res2, err := st2.readSegment("fuzz.wal", repaired, true)
		if err == nil {
			err = st2.finish()
		}
		if err != nil || res2.dirty || res2.cut != res.cut {
			t.Fatalf("repaired segment: err %v dirty %v cut %d, want cut %d", err, res2.dirty, res2.cut, res.cut)
		}
		if len(st2.ents) != len(st.ents) || st2.hs != st.hs || st2.snapIndex != st.snapIndex || st2.lastBatch != st.lastBatch {
			t.Fatal("repair changed the replay")
		}
	})
}

func checkReplay(t *testing.T, st *replayState) {
	t.Helper()
	if !st.haveMeta {
		t.Fatal("replay without metadata")
	}
	for i, e := range st.ents {
		if e.GetIndex() != st.snapIndex+1+uint64(i) {
			t.Fatalf("entry %d has index %d after snapshot %d", i, e.GetIndex(), st.snapIndex)
		}
	}
}
