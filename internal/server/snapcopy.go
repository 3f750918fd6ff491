package server

import (
	"errors"
	"io"
	"os"
	"sync"
)

// spoolReader reads a file while another goroutine is still writing it:
// the snapshot sent to a follower is copied from a bbolt read transaction
// into an unlinked temporary file (so no transaction stays open while a
// slow follower receives it), and the transfer starts at once instead of
// after the whole copy. Reads wait for the writer to get ahead of them.
type spoolReader struct {
	f *os.File

	mu      sync.Mutex
	cond    *sync.Cond
	written int64 // bytes the writer has put in f
	done    bool  // the writer finished (err says how)
	err     error
	closed  bool
	off     int64 // next byte to read (used by the reader only)
}

func newSpoolReader(f *os.File) *spoolReader {
	s := &spoolReader{f: f}
	s.cond = sync.NewCond(&s.mu)
	return s
}

// writer returns the io.Writer the copy goes through.
func (s *spoolReader) writer() io.Writer { return spoolWriter{s} }

type spoolWriter struct{ s *spoolReader }

func (w spoolWriter) Write(p []byte) (int, error) {
	w.s.mu.Lock()
	closed := w.s.closed
	off := w.s.written
	w.s.mu.Unlock()
	if closed {
		return 0, errSpoolClosed
	}
	n, err := w.s.f.WriteAt(p, off)
	w.s.mu.Lock()
	w.s.written += int64(n)
	w.s.cond.Broadcast()
	w.s.mu.Unlock()
	return n, err
}

var errSpoolClosed = errors.New("snapshot reader closed")

// finish records the end of the copy; err is what the reader reports once
// it has read everything written.
func (s *spoolReader) finish(err error) {
	s.mu.Lock()
	s.done, s.err = true, err
	s.cond.Broadcast()
	s.mu.Unlock()
}

func (s *spoolReader) Read(p []byte) (int, error) {
	s.mu.Lock()
	for s.written <= s.off && !s.done && !s.closed {
		s.cond.Wait()
	}
	avail, done, err, closed := s.written-s.off, s.done, s.err, s.closed
	s.mu.Unlock()
	if closed {
		return 0, errSpoolClosed
	}
	if avail <= 0 {
		if done && err != nil {
			return 0, err
		}
		return 0, io.EOF
	}
	if int64(len(p)) > avail {
		p = p[:avail]
	}
	n, rerr := s.f.ReadAt(p, s.off)
	s.off += int64(n)
	if rerr == io.EOF && n > 0 {
		rerr = nil
	}
	return n, rerr
}

// Close stops the reader; a copy still running stops at its next write.
func (s *spoolReader) Close() error {
	s.mu.Lock()
	s.closed = true
	s.cond.Broadcast()
	s.mu.Unlock()
	return s.f.Close()
}
