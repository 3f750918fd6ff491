package wal

import (
	"bytes"
	"os"
	"sync"
	"syscall"
	"time"
)

// defaultFS is the file system a WAL in dir uses. Builds with the
// faultinject tag replace it (injectfs_on.go) so the robustness suite can
// make a running member's disk fail; every other build uses the OS.
var defaultFS = func(dir string) fileSystem { return osFS{} }

// FaultControlFile is where a faultinject build of a member whose WAL is
// in dir reads which fault to inject: a sibling of the WAL directory.
func FaultControlFile(dir string) string { return dir + ".fault" }

// Faults a control file may name, one per file. A write fault writes the
// first half of the buffer before failing, as a dying disk may.
const (
	FaultNone        = ""
	FaultFsyncEIO    = "fsync-eio"
	FaultWriteEIO    = "write-eio"
	FaultWriteENOSPC = "write-enospc"
)

// controlledFS injects the fault named in a control file into every write
// or sync of its files. The file is re-read at most every pollEvery, so a
// test arms a fault in a running process by writing one word to it.
type controlledFS struct {
	osFS
	ctl string

	mu      sync.Mutex
	checked time.Time
	fault   string
}

const pollEvery = 10 * time.Millisecond

func newControlledFS(ctl string) *controlledFS { return &controlledFS{ctl: ctl} }

// current is the armed fault.
func (c *controlledFS) current() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if now := time.Now(); now.Sub(c.checked) >= pollEvery {
		c.checked = now
		b, err := os.ReadFile(c.ctl)
		if err != nil {
			b = nil // no file: no fault
		}
		c.fault = string(bytes.TrimSpace(b))
	}
	return c.fault
}

func (c *controlledFS) Create(path string) (file, error) {
	f, err := c.osFS.Create(path)
	if err != nil {
		return nil, err
	}
	return &controlledFile{file: f, fs: c}, nil
}

func (c *controlledFS) OpenRW(path string) (file, error) {
	f, err := c.osFS.OpenRW(path)
	if err != nil {
		return nil, err
	}
	return &controlledFile{file: f, fs: c}, nil
}

type controlledFile struct {
	file
	fs *controlledFS
}

// injectedError marks an injected error in logs; errors.Is still finds the
// errno a real disk would return.
type injectedError struct{ errno syscall.Errno }

func (e injectedError) Error() string { return e.errno.Error() + " (injected)" }
func (e injectedError) Unwrap() error { return e.errno }

func (f *controlledFile) WriteAt(p []byte, off int64) (int, error) {
	var errno syscall.Errno
	switch f.fs.current() {
	case FaultWriteEIO:
		errno = syscall.EIO
	case FaultWriteENOSPC:
		errno = syscall.ENOSPC
	default:
		return f.file.WriteAt(p, off)
	}
	n, _ := f.file.WriteAt(p[:len(p)/2], off)
	return n, injectedError{errno}
}

func (f *controlledFile) Sync() error {
	if f.fs.current() == FaultFsyncEIO {
		return injectedError{syscall.EIO}
	}
	return f.file.Sync()
}

func (f *controlledFile) Allocate(size int64) error {
	if f.fs.current() == FaultWriteENOSPC {
		return injectedError{syscall.ENOSPC}
	}
	return f.file.Allocate(size)
}
