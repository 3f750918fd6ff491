package server

import (
	"context"
	"fmt"
	"time"

	"github.com/cadrekv/cadre/internal/apply"
	"github.com/cadrekv/cadre/internal/cerr"
	"github.com/cadrekv/cadre/internal/membership"
	"github.com/cadrekv/cadre/internal/storage/schema"
)

// Autopilot: membership changes the leader makes by itself, each through
// ChangeMembers, so they pass exactly the checks an operator's would. The
// configuration is replicated (a Cadre entry, apply/cadre.go), so it
// survives leader changes and restarts; what the leader has observed
// (how long a learner has been ready) is its own and starts over on a new
// leader, which can only delay an action, never hasten it.

// autopilotTick is how often the leader looks.
const autopilotTick = time.Second

// Autopilot returns the replicated autopilot configuration.
func (s *Server) Autopilot() (membership.Autopilot, error) {
	raw, err := s.store.Meta(schema.MetaAutopilot)
	if err != nil {
		return membership.DefaultAutopilot(), err
	}
	return membership.LoadAutopilot(raw)
}

// SetAutopilot checks settings ("key=value") and replicates them; it
// returns the configuration once applied here.
func (s *Server) SetAutopilot(ctx context.Context, settings []string) (membership.Autopilot, error) {
	cur, err := s.Autopilot()
	if err != nil {
		return cur, err
	}
	if len(settings) == 0 {
		return cur, fmt.Errorf("%w: no autopilot setting given; settings are %s", cerr.ErrInvalidArgument, membership.AutopilotSettings())
	}
	for _, kv := range settings {
		if err := cur.Set(kv); err != nil {
			return cur, fmt.Errorf("%w: %v", cerr.ErrInvalidArgument, err)
		}
	}
	id := s.nextID()
	if _, err := s.proposeEntry(ctx, id, apply.EncodeAutopilotSet(id, settings)); err != nil {
		return cur, err
	}
	return s.Autopilot()
}

// autopilotLoop runs for the life of the server; it acts only while this
// member leads.
func (s *Server) autopilotLoop() {
	t := time.NewTicker(autopilotTick)
	defer t.Stop()
	readySince := map[uint64]time.Time{} // learner -> caught up and connected since
	waiting := map[uint64]string{}       // learner with an intent -> why it waits, as last logged
	for {
		select {
		case <-s.stopping:
			return
		case <-t.C:
		}
		s.membershipGauges()
		if !s.node.IsLeader() || !s.IsReady() {
			clear(readySince)
			continue
		}
		cfg, err := s.Autopilot()
		if err != nil {
			s.lg.Warn("autopilot configuration unreadable; autopilot idle", "error", err.Error())
			continue
		}
		v := s.view()
		s.autopilotIntents(v, waiting)
		if cfg.PromoteLearners {
			s.autopilotPromote(cfg, v, readySince)
		} else {
			clear(readySince)
		}
		if cfg.UnstartedTTL > 0 {
			s.autopilotRemoveUnstarted(cfg, v)
		}
	}
}

// autopilotPromote promotes each learner that has been started, caught up
// and connected for cfg.PromoteAfter.
func (s *Server) autopilotPromote(cfg membership.Autopilot, v membership.View, readySince map[uint64]time.Time) {
	seen := map[uint64]bool{}
	for _, m := range v.Members {
		if !m.IsLearner || m.Replaces != 0 || m.AutoPromote {
			continue // not a learner, or one autopilotIntents takes care of
		}
		seen[m.ID] = true
		caughtUp := v.Match[m.ID]+MaxLearnerLag >= v.Commit && !v.SnapshotInFlight[m.ID]
		if !m.Started() || !caughtUp || v.ActiveSince[m.ID].IsZero() {
			delete(readySince, m.ID)
			continue
		}
		since, ok := readySince[m.ID]
		if !ok {
			readySince[m.ID] = v.Now
			continue
		}
		if v.Now.Sub(since) < cfg.PromoteAfter {
			continue
		}
		change := membership.Change{Kind: membership.ChangePromote, ID: m.ID, By: "autopilot"}
		if verdict := membership.Evaluate(v, change); !verdict.Accepted {
			s.lg.Info("autopilot: learner ready but not promoted", "member", membership.IDString(m.ID), "name", m.Name, "reason", verdict.Detail)
			readySince[m.ID] = v.Now // look again after another stable period
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), s.reqTimout)
		_, err := s.ChangeMembers(ctx, change, false)
		cancel()
		if err != nil {
			s.lg.Warn("autopilot: promoting a learner failed; will retry", "member", membership.IDString(m.ID), "name", m.Name, "error", err.Error())
			readySince[m.ID] = v.Now
			continue
		}
		delete(readySince, m.ID)
		s.lg.Info("autopilot promoted a learner", "member", membership.IDString(m.ID), "name", m.Name,
			"ready-for", v.Now.Sub(since).Round(time.Millisecond).String(), "lag", v.Commit-min(v.Commit, v.Match[m.ID]))
	}
	for id := range readySince {
		if !seen[id] {
			delete(readySince, id)
		}
	}
}

// autopilotIntents carries out what an add recorded with a learner,
// whatever the autopilot settings: promote a member that joined with
// --join, or swap a replacement in for the voter it replaces, each as soon
// as the change passes the checks an operator's would (the learner has
// started and caught up). Why a learner still waits is logged when it
// changes.
func (s *Server) autopilotIntents(v membership.View, waiting map[uint64]string) {
	for _, m := range v.Members {
		if !m.IsLearner || (!m.AutoPromote && m.Replaces == 0) {
			delete(waiting, m.ID)
			continue
		}
		change := membership.Change{Kind: membership.ChangePromote, ID: m.ID, By: "autopilot (cadre --join)"}
		what := "promote a joined learner"
		if m.Replaces != 0 {
			change = membership.Change{Kind: membership.ChangeSwap, ID: m.ID, Old: m.Replaces, By: "autopilot (replace)"}
			what = "swap in a replacement"
			if v.Removed[m.Replaces] {
				// The member it was to replace is gone already: taking
				// its place is now a promotion.
				change = membership.Change{Kind: membership.ChangePromote, ID: m.ID, By: "autopilot (replace; the replaced member was removed)"}
			}
		}
		if verdict := membership.Evaluate(v, change); !verdict.Accepted {
			if waiting[m.ID] != verdict.Detail {
				waiting[m.ID] = verdict.Detail
				s.lg.Info("autopilot: waiting to "+what, "member", membership.IDString(m.ID), "name", m.Name,
					"replaces", membership.IDString(m.Replaces), "reason", verdict.Detail)
			}
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), s.reqTimout)
		_, err := s.ChangeMembers(ctx, change, false)
		cancel()
		if err != nil {
			s.lg.Warn("autopilot: could not "+what+"; will retry", "member", membership.IDString(m.ID), "name", m.Name, "error", err.Error())
			continue
		}
		delete(waiting, m.ID)
		s.lg.Info("autopilot: done: "+what, "member", membership.IDString(m.ID), "name", m.Name, "replaced", membership.IDString(m.Replaces))
		return // the view is stale now; look again next tick
	}
}

// autopilotRemoveUnstarted removes members added more than cfg.UnstartedTTL
// ago that never started, when the removal passes the quorum checks.
func (s *Server) autopilotRemoveUnstarted(cfg membership.Autopilot, v membership.View) {
	for _, m := range v.Members {
		if m.Started() || m.AddedAt == 0 {
			continue // members added before AddedAt was recorded are left alone
		}
		waited := v.Now.Sub(time.Unix(m.AddedAt, 0))
		if waited < cfg.UnstartedTTL {
			continue
		}
		change := membership.Change{Kind: membership.ChangeRemove, ID: m.ID, By: "autopilot"}
		if verdict := membership.Evaluate(v, change); !verdict.Accepted {
			s.lg.Warn("autopilot: unstarted member past its TTL, but removing it is not safe now", "member", membership.IDString(m.ID),
				"peer-urls", m.PeerURLs, "waited", waited.Round(time.Second).String(), "reason", verdict.Detail)
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), s.reqTimout)
		_, err := s.ChangeMembers(ctx, change, false)
		cancel()
		if err != nil {
			s.lg.Warn("autopilot: removing an unstarted member failed; will retry", "member", membership.IDString(m.ID), "error", err.Error())
			continue
		}
		s.lg.Info("autopilot removed a member that never started", "member", membership.IDString(m.ID), "peer-urls", m.PeerURLs,
			"waited", waited.Round(time.Second).String(), "unstarted-ttl", cfg.UnstartedTTL.String(),
			"why", "added but never started within unstarted-ttl; an unstarted voter still counts toward the quorum")
	}
}

// AutopilotStatus is the configuration and the members waiting to start.
func (s *Server) AutopilotStatus() (membership.AutopilotStatus, error) {
	cfg, err := s.Autopilot()
	if err != nil {
		return membership.AutopilotStatus{}, err
	}
	return membership.NewAutopilotStatus(cfg, s.cluster.Members(), time.Now()), nil
}

// membershipGauges refreshes the membership gauges (every autopilot tick):
// unstarted members on every member, learner lag on the leader.
func (s *Server) membershipGauges() {
	unstarted := 0
	for _, m := range s.cluster.Members() {
		if !m.Started() {
			unstarted++
		}
	}
	s.metrics.UnstartedMembers.Set(float64(unstarted))
	s.metrics.LearnerLag.Reset()
	if !s.node.IsLeader() {
		return
	}
	st := s.node.Status()
	commit := st.HardState.GetCommit()
	for _, m := range s.cluster.Members() {
		if pr, ok := st.Progress[m.ID]; ok && m.IsLearner {
			s.metrics.LearnerLag.WithLabelValues(membership.IDString(m.ID)).Set(float64(commit - min(commit, pr.Match)))
		}
	}
}
