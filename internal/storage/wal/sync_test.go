package wal

import "testing"

// A batch that only moves the commit index is written but not fsynced (raft
// needs entries, term and vote durable, not the commit index); entries and a
// term or vote change are fsynced; everything written replays.
func TestSaveFsyncsOnlyWhatRaftNeedsDurable(t *testing.T) {
	dir := t.TempDir()
	opts, _ := testOpts(t, 1<<20)
	ffs := &faultFS{}
	opts.fs = ffs
	w := mustCreate(t, dir, opts)
	count := func() int {
		ffs.mu.Lock()
		defer ffs.mu.Unlock()
		return ffs.syncs
	}
	steps := []struct {
		name string
		save func()
		sync bool
	}{
		{"entries", func() { mustSave(t, w, hardst(1, 1, 0), ents(1, 3, 1)) }, true},
		{"commit only", func() { mustSave(t, w, hardst(1, 1, 3), nil) }, false},
		{"entries and commit", func() { mustSave(t, w, hardst(1, 1, 4), ents(4, 5, 1)) }, true},
		{"commit only again", func() { mustSave(t, w, hardst(1, 1, 5), nil) }, false},
		{"new term", func() { mustSave(t, w, hardst(2, 0, 5), nil) }, true},
		{"new vote", func() { mustSave(t, w, hardst(2, 2, 5), nil) }, true},
		{"unchanged", func() { mustSave(t, w, hardst(2, 2, 5), nil) }, false},
	}
	for _, st := range steps {
		before := count()
		st.save()
		if got := count() - before; (got > 0) != st.sync {
			t.Fatalf("%s: %d fsyncs, want fsync=%v", st.name, got, st.sync)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	w2, rep := mustOpen(t, dir, opts)
	defer w2.Close()
	if got := hardStateOf(rep.HardState); got != (hardState{2, 2, 5}) {
		t.Fatalf("replayed hardstate %+v, want {2 2 5}", got)
	}
	if got := indexes(rep.Entries); len(got) != 5 || got[4][0] != 5 {
		t.Fatalf("replayed entries %v, want 1..5", got)
	}
}
