package server

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/cadrekv/cadre/internal/snapshot"
)

// snapshotStorageVersion is what Maintenance.Snapshot reports as the
// storage version (etcdctl prints it as "Server version"); it matches
// Status's StorageVersion.
const snapshotStorageVersion = "3.6.0"

// SnapshotStream gives Maintenance.Snapshot this member's data as of this
// call, as a database in etcd's layout (snapshot.ExportEtcd), so the file
// `snapshot save` writes is one etcdutl and etcd read. The backend copy is
// taken in one read transaction, written to a temporary file beside the
// data (bbolt cannot reuse the pages a long read transaction covers, so it
// is not held across a slow client), converted, and streamed; closing body
// removes both files.
func (s *Server) SnapshotStream() (body io.ReadCloser, size int64, version string, err error) {
	tmp, err := os.MkdirTemp(memberDir(s.cfg.DataDir), "snapshot-export-")
	if err != nil {
		return nil, 0, "", fmt.Errorf("creating a directory for the snapshot: %w", err)
	}
	defer func() {
		if err != nil {
			os.RemoveAll(tmp)
		}
	}()
	start := time.Now()
	raw := filepath.Join(tmp, "cadre.db")
	index, err := s.copyBackend(raw)
	if err != nil {
		return nil, 0, "", err
	}
	exported := filepath.Join(tmp, "etcd.db")
	if err = snapshot.ExportEtcd(raw, exported, s.lg); err != nil {
		return nil, 0, "", err
	}
	_ = os.Remove(raw)
	f, err := os.Open(exported)
	if err != nil {
		return nil, 0, "", err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, 0, "", err
	}
	s.lg.Info("sending database snapshot to client", "total-bytes", st.Size(), "applied-index", index, "prepared-in", time.Since(start))
	return &removeOnClose{File: f, dir: tmp}, st.Size(), snapshotStorageVersion, nil
}

// copyBackend writes a consistent copy of the backend to path and returns
// the applied index it covers.
func (s *Server) copyBackend(path string) (uint64, error) {
	sn, err := s.store.OpenSnapshot()
	if err != nil {
		return 0, fmt.Errorf("opening a backend snapshot: %w", err)
	}
	defer sn.Close()
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return 0, err
	}
	if _, err := sn.WriteTo(f); err != nil {
		f.Close()
		return 0, fmt.Errorf("copying the backend for a snapshot: %w", err)
	}
	return sn.Index, f.Close()
}

// removeStaleExports deletes what a snapshot being exported when the
// member stopped left behind.
func removeStaleExports(dataDir string, lg *slog.Logger) {
	stale, _ := filepath.Glob(filepath.Join(memberDir(dataDir), "snapshot-export-*"))
	for _, d := range stale {
		if err := os.RemoveAll(d); err != nil {
			lg.Warn("cannot remove a leftover snapshot export", "path", d, "error", err.Error())
		}
	}
}

// removeOnClose deletes the snapshot's temporary directory once streamed.
type removeOnClose struct {
	*os.File
	dir string
}

func (r *removeOnClose) Close() error {
	err := r.File.Close()
	_ = os.RemoveAll(r.dir)
	return err
}

// bootstrapDefrag defragments the backend before the member serves when
// --bootstrap-defrag-threshold-megabytes says enough would be freed (etcd's
// rule and log lines).
func (s *Server) bootstrapDefrag() {
	threshold := int64(s.cfg.BootstrapDefragThresholdMB) << 20
	if threshold == 0 {
		return
	}
	size, inUse := s.store.Size(), s.store.SizeInUse()
	free := size - inUse
	if free < threshold {
		s.lg.Info("Skipping defragmentation", "current-db-size-bytes", size, "current-db-size-in-use-bytes", inUse,
			"freeable-bytes", free, "threshold-bytes", threshold)
		return
	}
	before, after, err := s.store.Defragment()
	if err != nil {
		s.lg.Warn("bootstrap defragmentation failed; serving without it", "error", err.Error())
		return
	}
	s.lg.Info("defragmented the backend at start", "before-bytes", before, "after-bytes", after)
}
