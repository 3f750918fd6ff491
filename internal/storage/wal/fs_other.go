//go:build !linux

package wal

import "os"

func datasync(f *os.File) error { return f.Sync() }

func allocate(f *os.File, size int64) error { return growTo(f, size) }
