package server

import (
	"fmt"
	"io"
	"time"
)

// snapshotStorageVersion is what Maintenance.Snapshot reports as the
// storage version (etcdctl prints it as "Server version"); it matches
// Status's StorageVersion.
const snapshotStorageVersion = "3.6.0"

// SnapshotStream opens a consistent copy of this member's backend for
// Maintenance.Snapshot: body yields exactly size bytes of the bbolt file as
// of this call. Closing body early releases the copy; so does reading it
// to the end. While the copy is open bbolt cannot reuse the pages it
// covers, so the caller streams it and never holds it.
func (s *Server) SnapshotStream() (body io.ReadCloser, size int64, version string, err error) {
	sn, err := s.store.OpenSnapshot()
	if err != nil {
		return nil, 0, "", fmt.Errorf("opening a backend snapshot: %w", err)
	}
	size = sn.Size
	s.lg.Info("sending database snapshot to client", "total-bytes", size, "applied-index", sn.Index)
	pr, pw := io.Pipe()
	go func() {
		start := time.Now()
		n, werr := sn.WriteTo(pw)
		if cerr := sn.Close(); werr == nil {
			werr = cerr
		}
		if werr != nil {
			s.lg.Warn("database snapshot not sent completely", "sent-bytes", n, "total-bytes", size, "error", werr.Error())
		} else {
			s.lg.Info("database snapshot read", "total-bytes", n, "took", time.Since(start))
		}
		pw.CloseWithError(werr) // nil: the reader sees EOF
	}()
	return pr, size, snapshotStorageVersion, nil
}
