package wal

import (
	"fmt"
	"os"
	"path/filepath"
)

// All file I/O of the package goes through these two interfaces so tests can
// inject write and sync failures (see faultFS in the tests).
type fileSystem interface {
	MkdirAll(dir string) error
	List(dir string) ([]string, error)
	ReadFile(path string) ([]byte, error)
	// Create opens path for writing, creating or truncating it.
	Create(path string) (file, error)
	// OpenRW opens an existing file for writing.
	OpenRW(path string) (file, error)
	Rename(from, to string) error
	Remove(path string) error
	SyncDir(dir string) error
}

type file interface {
	WriteAt(p []byte, off int64) (int, error)
	// Sync makes written data durable (fdatasync where available).
	Sync() error
	Truncate(size int64) error
	// Allocate makes the file at least size bytes long, reading as zeros.
	Allocate(size int64) error
	Close() error
}

// maxFileSize bounds how much Open reads into memory for one segment.
const maxFileSize = 1 << 31

type osFS struct{}

func (osFS) MkdirAll(dir string) error { return os.MkdirAll(dir, 0o700) }

func (osFS) List(dir string) ([]string, error) {
	des, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	names := make([]string, 0, len(des))
	for _, de := range des {
		if de.Type().IsRegular() {
			names = append(names, de.Name())
		}
	}
	return names, nil
}

func (osFS) ReadFile(path string) ([]byte, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if fi.Size() > maxFileSize {
		return nil, fmt.Errorf("%s is %d bytes, more than the %d a segment may hold", path, fi.Size(), int64(maxFileSize))
	}
	return os.ReadFile(path)
}

func (osFS) Create(path string) (file, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return nil, err
	}
	return osFile{f}, nil
}

func (osFS) OpenRW(path string) (file, error) {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return nil, err
	}
	return osFile{f}, nil
}

func (osFS) Rename(from, to string) error { return os.Rename(from, to) }
func (osFS) Remove(path string) error     { return os.Remove(path) }

func (osFS) SyncDir(dir string) error {
	d, err := os.Open(filepath.Clean(dir))
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

type osFile struct{ f *os.File }

func (o osFile) WriteAt(p []byte, off int64) (int, error) { return o.f.WriteAt(p, off) }
func (o osFile) Sync() error                              { return datasync(o.f) }
func (o osFile) Truncate(size int64) error                { return o.f.Truncate(size) }
func (o osFile) Allocate(size int64) error                { return allocate(o.f, size) }
func (o osFile) Close() error                             { return o.f.Close() }

// growTo is the portable fallback for allocate: a sparse extension still
// reads as zeros, which is all the format needs.
func growTo(f *os.File, size int64) error {
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	if fi.Size() >= size {
		return nil
	}
	return f.Truncate(size)
}
