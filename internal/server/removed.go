package server

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/cadrekv/cadre/internal/membership"
)

// ErrRemoved means this member was permanently removed from its cluster.
// cmd/cadre exits with a distinct code for it, so supervisors can tell it
// from a crash and stop restarting the member.
var ErrRemoved = errors.New("the member has been permanently removed from the cluster")

func removedMarker(dataDir string) string { return filepath.Join(memberDir(dataDir), "removed") }

// checkRemovedMarker refuses to start a data dir whose member was removed,
// without contacting (or disturbing) the cluster.
func checkRemovedMarker(dataDir string) error {
	b, err := os.ReadFile(removedMarker(dataDir))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	id := "this member"
	if err == nil && len(b) > 0 {
		id = "member " + string(b)
	}
	return fmt.Errorf("%w: %s was removed and its data dir %s can never rejoin; to bring this machine back, wipe the data dir (rm -rf %s), run `cadrectl member add <name> --peer-urls=<its peer URL>` (or etcdctl member add) on the cluster, and start it with the settings that command prints",
		ErrRemoved, id, dataDir, dataDir)
}

// removedFromCluster records the removal durably, then stops the member a
// moment later, so the answer to the removal request (if it came through
// this member) still goes out.
func (s *Server) removedFromCluster() {
	p := removedMarker(s.cfg.DataDir)
	if err := writeFileSync(p, []byte(membership.IDString(s.id))); err != nil {
		s.lg.Error("cannot write the removed-member marker", "path", p, "error", err.Error())
	}
	s.lg.Warn("the member has been permanently removed from the cluster; the data dir used by this member must be wiped before it can be added again",
		"data-dir", s.cfg.DataDir)
	go func() {
		select {
		case <-time.After(500 * time.Millisecond):
		case <-s.stopping:
		}
		s.fatal(ErrRemoved)
	}()
}

func writeFileSync(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
