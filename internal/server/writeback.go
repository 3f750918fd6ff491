package server

import (
	"io"
	"os"
)

// writebackEvery is how much a received snapshot file may hold in dirty
// pages before its writeback is started.
const writebackEvery = 8 << 20

// writebackWriter writes a large file and starts the kernel's writeback of
// each writebackEvery bytes as soon as they are written, without waiting
// for it. Why: a received snapshot must be fsynced before raft sees it, and
// an fsync of 100+ MB of dirty pages took 150 ms here after the last byte
// arrived; with writeback running during the transfer the fsync finds
// little left to write.
type writebackWriter struct {
	w         io.Writer
	writeback func(off, n int64) // starts writeback of [off, off+n)
	written   int64
	started   int64 // writeback started up to here
}

func newWritebackWriter(f *os.File) *writebackWriter {
	return &writebackWriter{w: f, writeback: func(off, n int64) { startWriteback(f, off, n) }}
}

func (w *writebackWriter) Write(p []byte) (int, error) {
	n, err := w.w.Write(p)
	w.written += int64(n)
	if w.written-w.started >= writebackEvery {
		w.writeback(w.started, w.written-w.started)
		w.started = w.written
	}
	return n, err
}
