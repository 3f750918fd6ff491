package wal

import (
	"errors"
	"os"
	"syscall"
	"testing"
	"time"
)

// TestControlledFSArmsFromFile: a fault named in the control file reaches
// the next write or sync (after at most one poll interval), carries the
// errno a real disk would give, and the WAL keeps its acknowledged prefix.
func TestControlledFSArmsFromFile(t *testing.T) {
	for _, tc := range []struct {
		fault string
		want  syscall.Errno
	}{
		{FaultFsyncEIO, syscall.EIO},
		{FaultWriteEIO, syscall.EIO},
		{FaultWriteENOSPC, syscall.ENOSPC},
	} {
		t.Run(tc.fault, func(t *testing.T) {
			dir := t.TempDir() + "/wal"
			opts, _ := testOpts(t, 4096)
			cfs := newControlledFS(FaultControlFile(dir))
			opts.fs = cfs
			w := mustCreate(t, dir, opts)
			defer w.Close()
			mustSave(t, w, hardst(1, 0, 0), ents(1, 3, 1))

			if err := os.WriteFile(FaultControlFile(dir), []byte(tc.fault+"\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			time.Sleep(2 * pollEvery)
			err := w.Save(hardst(1, 0, 3), ents(4, 6, 1))
			if !errors.Is(err, tc.want) {
				t.Fatalf("Save with %s armed: %v, want %v", tc.fault, err, tc.want)
			}
			w.Close()

			// Disarmed (file removed), the log reopens with what was
			// acknowledged before the fault.
			if err := os.Remove(FaultControlFile(dir)); err != nil {
				t.Fatal(err)
			}
			w2, rep := mustOpen(t, dir, Options{SegmentSize: 4096})
			defer w2.Close()
			if got := indexes(rep.Entries); len(got) < 3 || got[2] != [2]uint64{3, 1} {
				t.Fatalf("entries after the injected %s: %v", tc.fault, got)
			}
		})
	}
}

// TestControlledFSWithoutFileIsPlain: no control file, no fault.
func TestControlledFSWithoutFileIsPlain(t *testing.T) {
	dir := t.TempDir() + "/wal"
	opts, _ := testOpts(t, 4096)
	opts.fs = newControlledFS(FaultControlFile(dir))
	w := mustCreate(t, dir, opts)
	defer w.Close()
	for i := uint64(1); i <= 20; i += 2 {
		mustSave(t, w, hardst(1, 0, i+1), ents(i, i+1, 1))
	}
}
