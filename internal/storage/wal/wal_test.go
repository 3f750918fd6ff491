package wal

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"go.etcd.io/raft/v3/raftpb"
)

func TestRoundTrip(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "wal")
	opts, _ := testOpts(t, 0)
	var fsyncs int
	opts.OnFsync = func(time.Duration) { fsyncs++ }

	if Exist(dir) {
		t.Fatal("Exist before Create")
	}
	if _, _, err := Open(dir, opts); err == nil {
		t.Fatal("Open of a missing dir succeeded")
	}
	w := mustCreate(t, dir, opts)
	if !Exist(dir) {
		t.Fatal("Exist after Create = false")
	}
	if _, err := Create(dir, nil, opts); !errors.Is(err, ErrExist) {
		t.Fatalf("second Create: %v, want ErrExist", err)
	}
	if fi, err := os.Stat(dir); err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("dir mode: %v %v", fi.Mode(), err)
	}

	fsyncs = 0
	mustSave(t, w, hardst(1, 1, 2), ents(1, 5, 1))
	if fsyncs != 1 {
		t.Fatalf("Save did %d fsyncs, want 1", fsyncs)
	}
	mustSave(t, w, nil, nil)
	mustSave(t, w, hardst(1, 1, 2), nil) // unchanged
	if fsyncs != 1 {
		t.Fatalf("no-op Saves did %d fsyncs, want none", fsyncs-1)
	}
	if err := w.SaveSnapshot(snapMeta(3, 1, 1, 2, 3)); err != nil {
		t.Fatal(err)
	}
	mustSave(t, w, nil, []*raftpb.Entry{ent(6, 2, "six"), ent(7, 2, "seven")})
	mustSave(t, w, hardst(2, 0, 6), nil)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := w.Save(hardst(3, 0, 0), nil); !errors.Is(err, ErrClosed) {
		t.Fatalf("Save after Close: %v", err)
	}

	w, rep := mustOpen(t, dir, opts)
	if string(rep.Metadata) != "meta" {
		t.Fatalf("metadata %q", rep.Metadata)
	}
	if got := hardStateOf(rep.HardState); got != (hardState{2, 0, 6}) {
		t.Fatalf("hardstate %+v", got)
	}
	if rep.Snapshot.GetIndex() != 3 || rep.Snapshot.GetTerm() != 1 ||
		!slices.Equal(rep.Snapshot.GetConfState().GetVoters(), []uint64{1, 2, 3}) {
		t.Fatalf("snapshot %v", rep.Snapshot)
	}
	want := [][2]uint64{{4, 1}, {5, 1}, {6, 2}, {7, 2}}
	if got := indexes(rep.Entries); !reflect.DeepEqual(got, want) {
		t.Fatalf("entries %v, want %v", got, want)
	}
	if string(rep.Entries[3].GetData()) != "seven" || rep.Entries[3].GetType() != raftpb.EntryNormal {
		t.Fatalf("entry 7 = %v", rep.Entries[3])
	}
	// Appending continues after reopen.
	mustSave(t, w, hardst(2, 0, 8), []*raftpb.Entry{ent(8, 2, "eight")})
	w.Close()
	w, rep = mustOpen(t, dir, opts)
	defer w.Close()
	if got := indexes(rep.Entries); len(got) != 5 || got[4] != [2]uint64{8, 2} {
		t.Fatalf("entries after second reopen %v", got)
	}
	if rep.HardState.GetCommit() != 8 {
		t.Fatalf("commit %d", rep.HardState.GetCommit())
	}
}

func TestOpenFreshHasZeroHardState(t *testing.T) {
	dir := t.TempDir()
	opts, _ := testOpts(t, 4096)
	mustCreate(t, dir, opts).Close()
	w, rep := mustOpen(t, dir, opts)
	defer w.Close()
	hs := rep.HardState
	if hs == nil || hs.Term == nil || hs.Vote == nil || hs.Commit == nil || hs.GetTerm() != 0 {
		t.Fatalf("hardstate %v", hs)
	}
	if rep.Snapshot != nil || len(rep.Entries) != 0 {
		t.Fatalf("fresh replay %v %v", rep.Snapshot, rep.Entries)
	}
	// The first entry of a fresh log must be 1.
	if err := w.Save(nil, ents(2, 2, 1)); !errors.Is(err, ErrInvalid) {
		t.Fatalf("Save at 2: %v, want ErrInvalid", err)
	}
	mustSave(t, w, nil, ents(1, 1, 1)) // still usable after ErrInvalid
}

func TestOverwrite(t *testing.T) {
	type step struct {
		snap uint64 // SaveSnapshot at this index if > 0
		ents []*raftpb.Entry
	}
	cases := []struct {
		name  string
		steps []step
		want  [][2]uint64
	}{
		{"overwrite tail", []step{{ents: ents(1, 5, 1)}, {ents: ents(4, 4, 2)}},
			[][2]uint64{{1, 1}, {2, 1}, {3, 1}, {4, 2}}},
		{"overwrite all", []step{{ents: ents(1, 5, 1)}, {ents: ents(1, 2, 3)}},
			[][2]uint64{{1, 3}, {2, 3}}},
		{"overwrite then extend", []step{{ents: ents(1, 5, 1)}, {ents: ents(3, 7, 2)}},
			[][2]uint64{{1, 1}, {2, 1}, {3, 2}, {4, 2}, {5, 2}, {6, 2}, {7, 2}}},
		{"append at last+1", []step{{ents: ents(1, 3, 1)}, {ents: ents(4, 4, 1)}},
			[][2]uint64{{1, 1}, {2, 1}, {3, 1}, {4, 1}}},
		{"snapshot then overwrite above it", []step{{ents: ents(1, 6, 1)}, {snap: 3}, {ents: ents(5, 5, 2)}},
			[][2]uint64{{4, 1}, {5, 2}}},
		{"snapshot past the log", []step{{ents: ents(1, 3, 1)}, {snap: 10}, {ents: ents(11, 12, 4)}},
			[][2]uint64{{11, 4}, {12, 4}}},
		{"snapshot at last", []step{{ents: ents(1, 3, 1)}, {snap: 3}}, [][2]uint64{}},
	}
	for _, tc := range cases {
		for _, segSize := range []int64{512, 1 << 20} { // with and without segment cuts
			t.Run(tc.name, func(t *testing.T) {
				dir := t.TempDir()
				opts, _ := testOpts(t, segSize)
				w := mustCreate(t, dir, opts)
				for _, s := range tc.steps {
					if s.snap > 0 {
						if err := w.SaveSnapshot(snapMeta(s.snap, 1)); err != nil {
							t.Fatal(err)
						}
					}
					for _, e := range s.ents { // one Save per entry: forces cuts at 512 B
						mustSave(t, w, hardst(e.GetTerm(), 0, 0), []*raftpb.Entry{e})
					}
				}
				w.Close()
				w, rep := mustOpen(t, dir, opts)
				defer w.Close()
				if got := indexes(rep.Entries); !reflect.DeepEqual(got, tc.want) {
					t.Fatalf("entries %v, want %v", got, tc.want)
				}
			})
		}
	}
}

func TestSaveRejectsBadEntries(t *testing.T) {
	w := mustCreate(t, t.TempDir(), Options{SegmentSize: 4096})
	defer w.Close()
	mustSave(t, w, nil, ents(1, 5, 1))
	if err := w.SaveSnapshot(snapMeta(3, 1)); err != nil {
		t.Fatal(err)
	}
	for name, es := range map[string][]*raftpb.Entry{
		"gap":             ents(7, 7, 1),
		"not contiguous":  {ent(6, 1, ""), ent(8, 1, "")},
		"below snapshot":  ents(3, 3, 2),
		"nil entry":       {nil},
		"oversize record": {ent(6, 1, string(make([]byte, maxPayload+1)))},
	} {
		if err := w.Save(nil, es); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: %v, want ErrInvalid", name, err)
		}
	}
	if err := w.SaveSnapshot(snapMeta(2, 1)); !errors.Is(err, ErrInvalid) {
		t.Errorf("snapshot going back: %v", err)
	}
	mustSave(t, w, nil, ents(6, 6, 1)) // still usable
}

func TestCutAndRelease(t *testing.T) {
	dir := t.TempDir()
	opts, logs := testOpts(t, 1024)
	w := mustCreate(t, dir, opts)
	for i := uint64(1); i <= 60; i++ {
		mustSave(t, w, hardst(1, 1, i-1), []*raftpb.Entry{ent(i, 1, "0123456789abcdef0123456789abcdef")})
		if i == 30 {
			if err := w.SaveSnapshot(snapMeta(25, 1, 1)); err != nil {
				t.Fatal(err)
			}
		}
	}
	files := segFiles(t, dir)
	if len(files) < 5 {
		t.Fatalf("only %d segments after 60 saves of 1 KiB segments", len(files))
	}
	if err := w.SaveSnapshot(snapMeta(40, 1, 1)); err != nil {
		t.Fatal(err)
	}
	// Asking for more than the snapshot allows is capped at snapshot+1.
	if err := w.ReleaseTo(1000); err != nil {
		t.Fatal(err)
	}
	left := segFiles(t, dir)
	if len(left) >= len(files) {
		t.Fatalf("ReleaseTo deleted nothing: %d files", len(left))
	}
	// The oldest survivor still holds entry 41 (or older): nothing Open
	// needs was deleted.
	_, first, _ := parseSegmentName(filepath.Base(left[0]))
	if first > 41 {
		t.Fatalf("oldest kept segment %s starts after index 41", left[0])
	}
	w.Close()
	w, rep := mustOpen(t, dir, opts)
	if rep.Snapshot.GetIndex() != 40 || hardStateOf(rep.HardState) != (hardState{1, 1, 59}) || string(rep.Metadata) != "meta" {
		t.Fatalf("replay after release: snap %v hs %v meta %q", rep.Snapshot, rep.HardState, rep.Metadata)
	}
	if got := indexes(rep.Entries); len(got) != 20 || got[0][0] != 41 || got[19][0] != 60 {
		t.Fatalf("entries after release %v", got)
	}
	// Release everything up to the last snapshot: only the last segment
	// may remain, and it replays on its own.
	if err := w.SaveSnapshot(snapMeta(60, 1, 1)); err != nil {
		t.Fatal(err)
	}
	mustSave(t, w, hardst(1, 1, 61), []*raftpb.Entry{ent(61, 1, string(make([]byte, 900)))}) // forces a cut
	if err := w.ReleaseTo(61); err != nil {
		t.Fatal(err)
	}
	if n := len(segFiles(t, dir)); n != 1 {
		t.Fatalf("%d segments left, want 1", n)
	}
	w.Close()
	w, rep = mustOpen(t, dir, opts)
	defer w.Close()
	if rep.Snapshot.GetIndex() != 60 || rep.HardState.GetCommit() != 61 || len(rep.Entries) != 1 || rep.Entries[0].GetIndex() != 61 {
		t.Fatalf("replay of the last segment alone: snap %v hs %v ents %v", rep.Snapshot, rep.HardState, indexes(rep.Entries))
	}
	if !strings.Contains(logs.String(), "cut segment") {
		t.Fatal("no cut logged")
	}
}

// A raft truncation that rewrites indexes held by an older segment must
// keep that segment until the snapshot passes it, and replay must let the
// rewrite win.
func TestReleaseWithRewriteAcrossSegments(t *testing.T) {
	dir := t.TempDir()
	opts, _ := testOpts(t, 1024)
	w := mustCreate(t, dir, opts)
	for i := uint64(1); i <= 20; i++ {
		mustSave(t, w, nil, []*raftpb.Entry{ent(i, 1, "0123456789abcdef0123456789abcdef")})
	}
	mustSave(t, w, nil, ents(12, 14, 2)) // rewrite 12.. in a later segment
	if err := w.SaveSnapshot(snapMeta(13, 2)); err != nil {
		t.Fatal(err)
	}
	if err := w.ReleaseTo(14); err != nil {
		t.Fatal(err)
	}
	w.Close()
	w, rep := mustOpen(t, dir, opts)
	defer w.Close()
	if got := indexes(rep.Entries); !reflect.DeepEqual(got, [][2]uint64{{14, 2}}) {
		t.Fatalf("entries %v", got)
	}
}

func TestFailedWriteIsSticky(t *testing.T) {
	injected := errors.New("injected I/O error")
	for _, mode := range []string{"write", "sync", "cut"} {
		t.Run(mode, func(t *testing.T) {
			dir := t.TempDir()
			ffs := &faultFS{}
			opts, _ := testOpts(t, 4096)
			opts.fs = ffs
			w := mustCreate(t, dir, opts)
			defer w.Close()
			mustSave(t, w, hardst(1, 0, 0), ents(1, 3, 1))
			var big []*raftpb.Entry
			switch mode {
			case "write":
				ffs.set(injected, nil)
			case "sync":
				ffs.set(nil, injected)
			case "cut":
				ffs.set(nil, injected)
				big = []*raftpb.Entry{ent(4, 1, string(make([]byte, 5000)))}
			}
			if big == nil {
				big = ents(4, 4, 1)
			}
			err := w.Save(hardst(1, 0, 1), big)
			if !errors.Is(err, injected) {
				t.Fatalf("Save: %v, want injected error", err)
			}
			ffs.set(nil, nil)
			if err2 := w.Save(hardst(2, 0, 1), ents(4, 4, 2)); err2 != err {
				t.Fatalf("Save after failure: %v, want the same error %v", err2, err)
			}
			if err2 := w.SaveSnapshot(snapMeta(1, 1)); err2 != err {
				t.Fatalf("SaveSnapshot after failure: %v", err2)
			}
			if err2 := w.ReleaseTo(1); err2 != err {
				t.Fatalf("ReleaseTo after failure: %v", err2)
			}
			w.Close()
			// The acknowledged prefix survives.
			w2, rep := mustOpen(t, dir, Options{SegmentSize: 4096})
			defer w2.Close()
			if got := indexes(rep.Entries); len(got) < 3 || got[2] != [2]uint64{3, 1} {
				t.Fatalf("entries after failed save %v", got)
			}
		})
	}
}

func TestOpenRemovesTempAndRejectsGap(t *testing.T) {
	dir := t.TempDir()
	opts, _ := testOpts(t, 600)
	w := mustCreate(t, dir, opts)
	for i := uint64(1); i <= 12; i++ {
		mustSave(t, w, nil, []*raftpb.Entry{ent(i, 1, string(make([]byte, 200)))})
	}
	w.Close()
	files := segFiles(t, dir)
	if len(files) < 3 {
		t.Fatalf("%d segments", len(files))
	}
	tmp := filepath.Join(dir, segmentName(99, 99)+".tmp")
	if err := os.WriteFile(tmp, []byte("junk"), 0o600); err != nil {
		t.Fatal(err)
	}
	w, _ = mustOpen(t, dir, opts)
	w.Close()
	if _, err := os.Stat(tmp); !os.IsNotExist(err) {
		t.Fatalf("leftover temp file still there: %v", err)
	}
	if err := os.Remove(files[1]); err != nil {
		t.Fatal(err)
	}
	_, _, err := Open(dir, opts)
	wantCorrupt(t, err, files[2], 0)
}
