package server

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/cadrekv/cadre/internal/membership"
	"github.com/cadrekv/cadre/internal/storage/schema"
)

// The membership audit trail (membership/audit.go): applied changes are
// recorded by the apply path in the replicated backend; refusals are kept
// here, by the member that refused them, in a bounded ring.

// maxRefusals bounds the refusals a member remembers.
const maxRefusals = 1000

type refusals struct {
	mu   sync.Mutex
	recs []membership.AuditRecord
}

// recordRefusal remembers a change this member refused.
func (s *Server) recordRefusal(c membership.Change, err error) {
	members := s.cluster.Members()
	rec := membership.AuditRecord{
		At:         time.Now().UTC(),
		By:         c.By,
		Action:     membership.ActionOf(c.Kind, c.IsLearner),
		PeerURLs:   c.PeerURLs,
		Before:     membership.Summarize(members),
		After:      membership.Summarize(members),
		Outcome:    "refused: " + err.Error(),
		RecordedBy: membership.IDString(s.id),
	}
	if c.ID != 0 {
		rec.Member = membership.IDString(c.ID)
	}
	s.metrics.MembershipChanges.WithLabelValues(rec.Action, "refused").Inc()
	s.lg.Info("membership change refused", "action", rec.Action, "member", rec.Member, "by", c.By, "reason", err.Error())
	s.refused.mu.Lock()
	defer s.refused.mu.Unlock()
	s.refused.recs = append(s.refused.recs, rec)
	if n := len(s.refused.recs); n > maxRefusals {
		s.refused.recs = append([]membership.AuditRecord(nil), s.refused.recs[n-maxRefusals:]...)
	}
}

// verdictSummary is the strict check's verdict in one line.
func verdictSummary(v membership.Verdict) string {
	out := fmt.Sprintf("quorum %d -> %d, failure tolerance %d -> %d", v.QuorumBefore, v.QuorumAfter, v.FailureToleranceBefore, v.FailureToleranceAfter)
	if len(v.Warnings) > 0 {
		out += "; warnings: " + strings.Join(v.Warnings, "; ")
	}
	return out
}

// MembershipHistory returns the trail: the applied changes every member
// agrees on and the refusals this member saw, oldest first; since (if
// non-zero) keeps the records at or after it.
func (s *Server) MembershipHistory(since time.Time) ([]membership.AuditRecord, error) {
	raw, err := s.store.MetaWithPrefix(schema.AuditPrefix)
	if err != nil {
		return nil, err
	}
	var out []membership.AuditRecord
	for k, v := range raw {
		var rec membership.AuditRecord
		if err := json.Unmarshal(v, &rec); err != nil {
			s.lg.Warn("unreadable membership audit record", "key", k, "error", err.Error())
			continue
		}
		out = append(out, rec)
	}
	s.refused.mu.Lock()
	out = append(out, s.refused.recs...)
	s.refused.mu.Unlock()
	if !since.IsZero() {
		kept := out[:0]
		for _, r := range out {
			if !r.At.Before(since) {
				kept = append(kept, r)
			}
		}
		out = kept
	}
	sort.SliceStable(out, func(i, j int) bool {
		if !out[i].At.Equal(out[j].At) {
			return out[i].At.Before(out[j].At)
		}
		return out[i].Index < out[j].Index
	})
	return out, nil
}

// WaitMembershipChange blocks until the trail holds an applied change
// with an index above after, or ctx ends (a long poll: the trail's watch).
func (s *Server) WaitMembershipChange(ctx context.Context, after uint64) error {
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for {
		keys, err := s.store.MetaWithPrefix(schema.AuditPrefix)
		if err != nil {
			return err
		}
		for k := range keys {
			var idx uint64
			if _, err := fmt.Sscanf(strings.TrimPrefix(k, schema.AuditPrefix), "%016x", &idx); err == nil && idx > after {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-s.stopping:
			return ctx.Err()
		case <-t.C:
		}
	}
}
