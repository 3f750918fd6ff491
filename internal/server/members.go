package server

import (
	"context"
	"errors"
	"time"

	"go.etcd.io/raft/v3/raftpb"
	"go.etcd.io/raft/v3/tracker"

	"github.com/cadrekv/cadre/internal/cerr"
	"github.com/cadrekv/cadre/internal/membership"
)

// MaxLearnerLag is how many entries behind the leader's commit index a
// learner may be and still be promoted (an absolute bound, unlike etcd's
// 90% ratio, which lets a big index hide a large lag).
const MaxLearnerLag = 1000

// healthInterval is how long a peer must have been connected to count as
// active for the quorum-safety checks (etcd's value).
const healthInterval = 5 * time.Second

// ChangeMembers performs (or, with DryRun, evaluates) a membership change.
// Only the leader judges changes, because only it knows every member's
// progress and connectivity; other members forward the request to it.
func (s *Server) ChangeMembers(ctx context.Context, c membership.Change, dryRun bool) (*membership.ChangeResult, error) {
	if s.isLearner() {
		return nil, cerr.ErrNotSupportedLrnr
	}
	if !s.node.IsLeader() {
		if !dryRun {
			// Refuse here what needs no leader to judge (bad URLs, unknown
			// IDs, not enough started members), as etcd does: the answer
			// must not depend on whether a leader is reachable.
			if err := membership.Validate(s.localView(), c); err != nil {
				s.recordRefusal(c, err)
				return nil, err
			}
		}
		return s.forwardChange(ctx, c, dryRun)
	}
	if (c.Kind == membership.ChangeRemove && c.ID == s.id || c.Kind == membership.ChangeSwap && c.Old == s.id) && !dryRun {
		// Removing the leader: hand leadership to the most caught-up
		// voter first, so writes pause for a transfer, not an election.
		if err := s.transferLeadership(ctx, "removing the leader"); err == nil {
			return s.forwardChange(ctx, c, dryRun)
		} else {
			s.lg.Warn("could not hand over leadership before removing the leader; removing it anyway", "error", err.Error())
		}
	}
	s.confMu.Lock()
	defer s.confMu.Unlock()

	if c.Kind == membership.ChangeAdd && c.ID == 0 {
		// A joining member brings the ID it recorded in its data dir, so
		// that a retry finds its own entry; everyone else gets a new one.
		now := time.Now()
		c.ID = membership.ComputeMemberID(c.PeerURLs, "", &now)
	}
	v := s.view()
	if dryRun {
		verdict := membership.Evaluate(v, c)
		return &membership.ChangeResult{Verdict: &verdict}, nil
	}
	if err := membership.Validate(v, c); err != nil {
		s.recordRefusal(c, err)
		return nil, err
	}
	verdict := membership.Evaluate(v, c)
	audit := &membership.Audit{By: c.By, At: v.Now.UnixMilli(), Verdict: verdictSummary(verdict), Keep: s.cfg.MembershipHistory}
	if c.Kind == membership.ChangeSwap {
		return s.swapMembers(ctx, c, audit)
	}
	var m *membership.Member
	switch c.Kind {
	case membership.ChangeAdd:
		m = &membership.Member{ID: c.ID, PeerURLs: c.PeerURLs, IsLearner: c.IsLearner, AddedAt: time.Now().Unix(),
			AutoPromote: c.AutoPromote, Replaces: c.Replaces}
	case membership.ChangeUpdate:
		m = s.cluster.Member(c.ID)
		m.PeerURLs = c.PeerURLs
	case membership.ChangePromote:
		m = s.cluster.Member(c.ID)
	}
	// The learner limit travels in the entry: every member applies the
	// leader's limit, not its own --max-learners.
	cc, err := membership.NewConfChange(c.Kind, m, c.ID, s.cfg.MaxLearners)
	if err != nil {
		return nil, err
	}
	if err := membership.AttachAudit(cc, audit); err != nil {
		return nil, err
	}
	id := s.nextID()
	cc.Id = new(id)
	if err := s.proposeConfChange(ctx, id, cc); err != nil {
		return nil, err
	}
	res := &membership.ChangeResult{Members: s.cluster.Members()}
	if m != nil {
		res.Member = s.cluster.Member(c.ID)
	}
	return res, nil
}

// swapMembers proposes the joint-consensus swap of a validated c; the
// caller holds confMu.
func (s *Server) swapMembers(ctx context.Context, c membership.Change, audit *membership.Audit) (*membership.ChangeResult, error) {
	id := s.nextID()
	cc, err := membership.NewSwapConfChange(s.cluster.Member(c.ID), c.Old, id, audit)
	if err != nil {
		return nil, err
	}
	if err := s.proposeConfChange(ctx, id, cc); err != nil {
		return nil, err
	}
	return &membership.ChangeResult{Members: s.cluster.Members(), Member: s.cluster.Member(c.ID)}, nil
}

// proposeConfChange replicates cc, whose waiter is id, and waits until it
// is applied here.
func (s *Server) proposeConfChange(ctx context.Context, id uint64, cc raftpb.ConfChangeI) error {
	ch := s.reqs.Register(id)
	ctx, cancel := context.WithTimeout(ctx, s.reqTimout)
	defer cancel()
	if err := s.node.ProposeConfChange(ctx, cc); err != nil {
		s.reqs.Cancel(id)
		return s.proposeError(ctx, err)
	}
	for {
		select {
		case x := <-ch:
			res, ok := x.(result)
			if !ok {
				continue // a drop notice: only normal proposals are proposed again
			}
			// Reply only once raft counts the change as applied: raft drops
			// a next change proposed before that (etcd #15528).
			select {
			case <-s.node.WaitAdvanced(res.index):
			case <-ctx.Done():
			case <-s.stopping:
			}
			return res.err
		case <-ctx.Done():
			s.reqs.Cancel(id)
			return s.proposeError(ctx, ctx.Err())
		case <-s.stopping:
			s.reqs.Cancel(id)
			return cerr.ErrStopped
		}
	}
}

// view is the leader's picture of the cluster for membership.Validate.
func (s *Server) view() membership.View {
	st := s.node.Status()
	v := membership.View{
		Members:             s.cluster.Members(),
		Removed:             s.cluster.RemovedIDs(),
		Leader:              s.id,
		ActiveSince:         map[uint64]time.Time{},
		Now:                 time.Now(),
		HealthInterval:      healthInterval,
		Match:               map[uint64]uint64{},
		Commit:              st.HardState.GetCommit(),
		SnapshotInFlight:    map[uint64]bool{},
		StrictReconfigCheck: s.cfg.StrictReconfigCheck,
		MaxLearners:         s.cfg.MaxLearners,
		MaxLearnerLag:       MaxLearnerLag,
	}
	for _, m := range v.Members {
		if m.ID != s.id {
			if t := s.tr.ActiveSince(m.ID); !t.IsZero() {
				v.ActiveSince[m.ID] = t
			}
		}
	}
	for id, pr := range st.Progress {
		v.Match[id] = pr.Match
		v.SnapshotInFlight[id] = pr.State == tracker.StateSnapshot
	}
	return v
}

// localView is a view for the checks any member can make: connectivity
// and replication progress are taken as perfect, so only the rules that
// do not depend on them can refuse.
func (s *Server) localView() membership.View {
	v := s.view()
	v.Leader = s.id
	long := v.Now.Add(-time.Hour)
	for _, m := range v.Members {
		v.ActiveSince[m.ID] = long
		v.Match[m.ID] = v.Commit
		v.SnapshotInFlight[m.ID] = false
	}
	return v
}

// transferLeadership moves leadership from this member to the voter with
// the most complete log, bounded by two election timeouts.
func (s *Server) transferLeadership(ctx context.Context, why string) error {
	st := s.node.Status()
	var target, best uint64
	for id, pr := range st.Progress {
		if id == s.id || pr.IsLearner {
			continue
		}
		if target == 0 || pr.Match > best {
			target, best = id, pr.Match
		}
	}
	if target == 0 {
		return errors.New("no other voter to hand leadership to")
	}
	ctx, cancel := context.WithTimeout(ctx, 2*s.cfg.ElectionTimeout)
	defer cancel()
	start := time.Now()
	if err := s.node.TransferLeadership(ctx, target); err != nil {
		return err
	}
	s.lg.Info("transferred leadership", "reason", why, "transferee", membership.IDString(target), "took", time.Since(start).String())
	return nil
}

// MoveLeader hands leadership to target; it must be called on the leader.
func (s *Server) MoveLeader(ctx context.Context, target uint64) error {
	if !s.node.IsLeader() {
		return cerr.ErrNotLeader
	}
	m := s.cluster.Member(target)
	if m == nil || m.IsLearner {
		return cerr.ErrBadTransferee
	}
	if target == s.id {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, s.reqTimout)
	defer cancel()
	if err := s.node.TransferLeadership(ctx, target); err != nil {
		return cerr.ErrLeaderTransferTimeout
	}
	return nil
}

// MembersProgress returns replication progress; followers ask the leader.
func (s *Server) MembersProgress(ctx context.Context) (*membership.Progress, error) {
	if !s.node.IsLeader() {
		return s.forwardProgress(ctx)
	}
	st := s.node.Status()
	cs := s.node.ConfState()
	p := &membership.Progress{Leader: s.id, Commit: st.HardState.GetCommit(),
		Raft: membership.NewRaftConfig(cs.GetVoters(), cs.GetVotersOutgoing(), cs.GetLearners())}
	for _, m := range s.cluster.Members() {
		pr, ok := st.Progress[m.ID]
		mp := membership.MemberProgress{ID: m.ID}
		if ok {
			mp.Match = pr.Match
			if p.Commit > pr.Match {
				mp.Lag = p.Commit - pr.Match
			}
			mp.SnapshotInFlight = pr.State == tracker.StateSnapshot
			if mp.SnapshotInFlight {
				mp.SnapshotBytesSent, mp.SnapshotBytesTotal = s.tr.SnapshotProgress(m.ID)
			}
		}
		p.Members = append(p.Members, mp)
	}
	return p, nil
}
