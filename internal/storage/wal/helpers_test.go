package wal

import (
	"bytes"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

func ent(idx, term uint64, data string) *raftpb.Entry {
	return &raftpb.Entry{Index: proto.Uint64(idx), Term: proto.Uint64(term),
		Type: raftpb.EntryNormal.Enum(), Data: []byte(data)}
}

func ents(from, to, term uint64) []*raftpb.Entry {
	var out []*raftpb.Entry
	for i := from; i <= to; i++ {
		out = append(out, ent(i, term, "v"))
	}
	return out
}

func hardst(term, vote, commit uint64) *raftpb.HardState {
	return &raftpb.HardState{Term: proto.Uint64(term), Vote: proto.Uint64(vote), Commit: proto.Uint64(commit)}
}

func snapMeta(idx, term uint64, voters ...uint64) *raftpb.SnapshotMetadata {
	return &raftpb.SnapshotMetadata{Index: proto.Uint64(idx), Term: proto.Uint64(term),
		ConfState: &raftpb.ConfState{Voters: voters}}
}

// logBuf captures log output for assertions.
type logBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func testOpts(t testing.TB, segSize int64) (Options, *logBuf) {
	lb := &logBuf{}
	return Options{Logger: slog.New(slog.NewTextHandler(lb, &slog.HandlerOptions{Level: slog.LevelDebug})), SegmentSize: segSize}, lb
}

func mustCreate(t testing.TB, dir string, opts Options) *WAL {
	t.Helper()
	w, err := Create(dir, []byte("meta"), opts)
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	return w
}

func mustOpen(t testing.TB, dir string, opts Options) (*WAL, *Replay) {
	t.Helper()
	w, rep, err := Open(dir, opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return w, rep
}

func mustSave(t testing.TB, w *WAL, hs *raftpb.HardState, es []*raftpb.Entry) {
	t.Helper()
	if err := w.Save(hs, es); err != nil {
		t.Fatalf("Save: %v", err)
	}
}

// indexes returns "index/term" pairs for compact comparisons.
func indexes(es []*raftpb.Entry) [][2]uint64 {
	out := make([][2]uint64, 0, len(es))
	for _, e := range es {
		out = append(out, [2]uint64{e.GetIndex(), e.GetTerm()})
	}
	return out
}

func segFiles(t testing.TB, dir string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, "*.wal"))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// fileRecords decodes the records of a segment file.
func fileRecords(t testing.TB, path string) []record {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []record
	for off := 0; off < len(data); {
		r, why := parseRecord(data, off)
		if why != "" || r.size == 0 {
			break
		}
		out = append(out, r)
		off += r.size
	}
	return out
}

func patchFile(t testing.TB, path string, off int64, b []byte) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
}

func readAt(t testing.TB, path string, off int64, n int) []byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return data[off : off+int64(n)]
}

func wantCorrupt(t testing.TB, err error, file string, off int64) *CorruptError {
	t.Helper()
	var ce *CorruptError
	if !errors.As(err, &ce) {
		t.Fatalf("got error %v, want *CorruptError", err)
	}
	if !errors.Is(err, ErrCorrupt) {
		t.Fatalf("errors.Is(%v, ErrCorrupt) = false", err)
	}
	if ce.File != file || ce.Offset != off {
		t.Fatalf("corrupt at %s:%d (%s), want %s:%d", ce.File, ce.Offset, ce.Reason, file, off)
	}
	return ce
}

// faultFS wraps the OS file system and fails writes or syncs on demand.
type faultFS struct {
	osFS
	mu       sync.Mutex
	writeErr error
	syncErr  error
	syncs    int
}

func (f *faultFS) set(writeErr, syncErr error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.writeErr, f.syncErr = writeErr, syncErr
}

func (f *faultFS) Create(path string) (file, error) {
	fl, err := f.osFS.Create(path)
	if err != nil {
		return nil, err
	}
	return &faultFile{file: fl, fs: f}, nil
}

func (f *faultFS) OpenRW(path string) (file, error) {
	fl, err := f.osFS.OpenRW(path)
	if err != nil {
		return nil, err
	}
	return &faultFile{file: fl, fs: f}, nil
}

type faultFile struct {
	file
	fs *faultFS
}

func (f *faultFile) WriteAt(p []byte, off int64) (int, error) {
	f.fs.mu.Lock()
	err := f.fs.writeErr
	f.fs.mu.Unlock()
	if err != nil {
		// A failed write may still have reached the disk partly.
		n, _ := f.file.WriteAt(p[:len(p)/2], off)
		return n, err
	}
	return f.file.WriteAt(p, off)
}

func (f *faultFile) Sync() error {
	f.fs.mu.Lock()
	err := f.fs.syncErr
	f.fs.syncs++
	f.fs.mu.Unlock()
	if err != nil {
		return err
	}
	return f.file.Sync()
}
