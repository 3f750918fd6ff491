package server

import (
	"os"

	"golang.org/x/sys/unix"
)

// startWriteback asks the kernel to start writing [off, off+n) of f to disk
// and returns at once (sync_file_range with SYNC_FILE_RANGE_WRITE). It is
// only a head start: durability still comes from the fsync after. An error
// changes nothing for that fsync, so it is ignored.
func startWriteback(f *os.File, off, n int64) {
	_ = unix.SyncFileRange(int(f.Fd()), off, n, unix.SYNC_FILE_RANGE_WRITE)
}
