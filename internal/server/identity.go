package server

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/cadrekv/cadre/internal/apply"
	"github.com/cadrekv/cadre/internal/membership"
)

// Data dir identity. Each data dir draws an incarnation when it is created
// (schema.WALMetadata); once a member is running, it records its
// incarnation in the replicated membership, and its peers refuse the same
// member ID presenting another one. A member whose data dir was wiped (or
// swapped for another) and restarted with its old flags would otherwise
// rejoin having lost entries it acknowledged; it is stopped instead, with
// the fix. `cadre snapshot restore` and --force-new-cluster start new
// incarnations on purpose (a new cluster, with fresh records).

// ErrStaleDataDir means the cluster knows this member ID with another data
// dir. cmd/cadre exits with a distinct code for it.
var ErrStaleDataDir = errors.New("the cluster knows this member with another data dir")

// checkIncarnation is the transport's judge of a peer's incarnation.
func (s *Server) checkIncarnation(from, incarnation uint64) error {
	m := s.cluster.Member(from)
	if m == nil || m.Incarnation == 0 || m.Incarnation == incarnation {
		return nil
	}
	name := m.Name
	if name == "" {
		name = "(unstarted)"
	}
	return fmt.Errorf("member %s (%s) came back with a data dir the cluster does not know (incarnation %s; the cluster knows %s): it was wiped, restored from an older copy or swapped, and may lack entries it acknowledged. "+
		"Fix: remove the member (etcdctl member remove %s), wipe its data dir, and add it again (etcdctl member add, or cadre --join)",
		membership.IDString(from), name, membership.IDString(incarnation), membership.IDString(m.Incarnation), membership.IDString(from))
}

// staleIdentity stops this member: a peer refused its data dir.
func (s *Server) staleIdentity(reason string) {
	s.lg.Error("peers refuse this member's data dir; stopping", "data-dir", s.cfg.DataDir, "incarnation", membership.IDString(s.incarnation), "reason", reason)
	s.fatal(fmt.Errorf("%w: %s", ErrStaleDataDir, reason))
}

// recordIncarnation records this data dir's incarnation in the membership
// once (retrying while there is no leader); a data dir without one
// (created by an earlier Cadre) records nothing.
func (s *Server) recordIncarnation() {
	if s.incarnation == 0 {
		return
	}
	for attempt := 1; attempt <= 60; attempt++ {
		m := s.cluster.Member(s.id)
		if m == nil || m.Incarnation == s.incarnation {
			return
		}
		id := s.nextID()
		ctx, cancel := context.WithTimeout(context.Background(), s.reqTimout)
		_, err := s.proposeEntry(ctx, id, apply.EncodeIncarnation(id, s.id, s.incarnation))
		cancel()
		if err == nil {
			s.lg.Info("recorded this data dir's incarnation in the cluster", "incarnation", membership.IDString(s.incarnation))
			return
		}
		if m.Incarnation != 0 {
			// Refused at apply: peers will refuse our streams too.
			s.staleIdentity(err.Error())
			return
		}
		s.lg.Warn("recording this data dir's incarnation failed; retrying", "attempt", attempt, "error", err.Error())
		select {
		case <-s.stopping:
			return
		case <-time.After(time.Second):
		}
	}
}
