package server

import (
	"time"

	"github.com/cadrekv/cadre/internal/membership"
)

// reportPromotion tells the operator of a member the leader will promote
// by itself (`cadre --join`, a replacement) what it waits for, and when it
// votes. It ends once the member votes, leaves, or stops.
func (s *Server) reportPromotion() {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	var waitingSince, lastLog time.Time
	for {
		select {
		case <-s.stopping:
			return
		case <-t.C:
		}
		m := s.cluster.Member(s.id)
		switch {
		case m == nil && s.cluster.IsRemoved(s.id):
			return
		case m == nil:
			continue // a joining member that has not applied its own add yet
		case !m.IsLearner:
			if !waitingSince.IsZero() {
				s.lg.Info("the leader promoted this member: it now votes and serves clients", "waited", time.Since(waitingSince).Round(time.Millisecond).String())
			}
			return
		case !m.AutoPromote && m.Replaces == 0:
			return // an ordinary learner: promoted by an operator (or autopilot settings)
		case !m.Started():
			continue
		}
		if waitingSince.IsZero() {
			waitingSince = time.Now()
		}
		if time.Since(lastLog) >= 5*time.Second {
			lastLog = time.Now()
			what := "promote it"
			if m.Replaces != 0 {
				what = "swap it in for " + membership.IDString(m.Replaces)
			}
			s.lg.Info("learner catching up; the leader will "+what+" once it is in sync", "applied-index", s.node.AppliedIndex(),
				"waiting", time.Since(waitingSince).Round(time.Second).String())
		}
	}
}
