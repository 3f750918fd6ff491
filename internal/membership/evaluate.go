package membership

import (
	"encoding/json"
	"errors"
	"sort"
	"time"
)

// Verdict is the dry-run answer for `cadrectl member ... --dry-run`: what
// the real call would answer, why, and the configuration before and after.
//
// Failure tolerance follows Consul/autopilot: healthy voters - quorum,
// where healthy means active as the strict check counts it (the leader, or
// a peer connected for HealthInterval). It is computed for the "after"
// configuration even when the change is refused, to show what it would
// have done. A negative value is how many more voters must become healthy
// before the configuration can commit anything (e.g. -1 right after
// growing a one-member cluster to two: the new member is not up yet).
type Verdict struct {
	Accepted bool
	Error    string // the etcd error text the real call would return, e.g. "etcdserver: unhealthy cluster"
	Fix      string // what to do about Error
	Detail   string // Validate's full explanation
	Warnings []string

	VotersBefore, VotersAfter     []uint64
	LearnersBefore, LearnersAfter []uint64
	QuorumBefore, QuorumAfter     int

	FailureToleranceBefore, FailureToleranceAfter int

	Members []MemberHealth // the current members, as the leader sees them
}

// MemberHealth is one member as the leader judges it for a change.
type MemberHealth struct {
	ID          uint64
	Name        string
	PeerURLs    []string
	Started     bool
	IsLearner   bool
	Active      bool   // counts as up for the strict check
	ActiveSince string // RFC3339, or "" when not connected; the leader's own is ""
	Activity    string // in words, e.g. "connected for only 2s"
	Match       uint64
	Lag         uint64 // entries behind the leader's commit index
	Snapshot    bool   // a snapshot is being sent to it
}

// Evaluate judges c like Validate (it never differs on accepted/refused)
// and explains the outcome.
func Evaluate(v View, c Change) Verdict {
	j := judge(&v, c)
	out := Verdict{Accepted: j.err == nil, Warnings: j.warnings}
	if j.err != nil {
		out.Error = EtcdError(j.err)
		out.Fix = j.fix
		out.Detail = j.err.Error()
	}

	voters, learners := map[uint64]bool{}, map[uint64]bool{}
	for _, m := range v.Members {
		if m.IsLearner {
			learners[m.ID] = true
		} else {
			voters[m.ID] = true
		}
	}
	out.VotersBefore, out.LearnersBefore = sortedIDs(voters), sortedIDs(learners)
	out.QuorumBefore = quorum(len(voters))
	out.FailureToleranceBefore = countActive(&v, voters) - out.QuorumBefore

	// The configuration as if the change were applied.
	switch known := voters[c.ID] || learners[c.ID]; {
	case c.Kind == ChangeAdd && !known:
		if c.IsLearner {
			learners[c.ID] = true
		} else {
			voters[c.ID] = true
		}
	case c.Kind == ChangeRemove:
		delete(voters, c.ID)
		delete(learners, c.ID)
	case c.Kind == ChangePromote && learners[c.ID]:
		delete(learners, c.ID)
		voters[c.ID] = true
	case c.Kind == ChangeSwap && learners[c.ID] && voters[c.Old]:
		delete(learners, c.ID)
		delete(voters, c.Old)
		voters[c.ID] = true
	}
	out.VotersAfter, out.LearnersAfter = sortedIDs(voters), sortedIDs(learners)
	out.QuorumAfter = quorum(len(voters))
	out.FailureToleranceAfter = countActive(&v, voters) - out.QuorumAfter

	for _, m := range v.Members {
		h := MemberHealth{
			ID:        m.ID,
			Name:      m.Name,
			PeerURLs:  append([]string(nil), m.PeerURLs...),
			Started:   m.Started(),
			IsLearner: m.IsLearner,
			Active:    v.active(m.ID),
			Activity:  v.activity(m.ID),
			Match:     v.Match[m.ID],
			Lag:       v.lag(m.ID),
			Snapshot:  v.SnapshotInFlight[m.ID],
		}
		if t := v.ActiveSince[m.ID]; !t.IsZero() && m.ID != v.Leader {
			h.ActiveSince = t.UTC().Format(time.RFC3339)
		}
		out.Members = append(out.Members, h)
	}
	sort.Slice(out.Members, func(i, k int) bool { return out.Members[i].ID < out.Members[k].ID })
	return out
}

func countActive(v *View, ids map[uint64]bool) int {
	n := 0
	for id := range ids {
		if v.active(id) {
			n++
		}
	}
	return n
}

func sortedIDs(s map[uint64]bool) []uint64 {
	out := make([]uint64, 0, len(s))
	for id := range s {
		out = append(out, id)
	}
	sort.Slice(out, func(i, k int) bool { return out[i] < out[k] })
	return out
}

// EtcdError returns the etcd error text (rpctypes) a client gets for err,
// or err.Error() when err is not a membership error. ErrLastVoter wraps
// ErrNotEnoughStarted, so it maps to that, as in etcd.
func EtcdError(err error) string {
	switch {
	case errors.Is(err, ErrNotEnoughStarted):
		return "etcdserver: re-configuration failed due to not enough started members"
	case errors.Is(err, ErrUnhealthy):
		return "etcdserver: unhealthy cluster"
	case errors.Is(err, ErrLearnerNotReady):
		return "etcdserver: can only promote a learner member which is in sync with leader"
	case errors.Is(err, ErrNotLearner):
		return "etcdserver: can only promote a learner member"
	case errors.Is(err, ErrTooManyLearners):
		return "etcdserver: too many learner members in cluster"
	case errors.Is(err, ErrBadURLs):
		return "etcdserver: given member URLs are invalid"
	case errors.Is(err, ErrIDRemoved), errors.Is(err, ErrIDNotFound):
		return "etcdserver: member not found"
	case errors.Is(err, ErrIDExists):
		return "etcdserver: member ID already exist"
	case errors.Is(err, ErrPeerURLExists):
		return "etcdserver: Peer URLs already exists"
	}
	return err.Error()
}

// JSON form: lowerCamel keys and IDs as 16 hex digits, as etcdctl prints
// them and as Progress does.
type verdictJSON struct {
	Accepted               bool               `json:"accepted"`
	Error                  string             `json:"error,omitempty"`
	Fix                    string             `json:"fix,omitempty"`
	Detail                 string             `json:"detail,omitempty"`
	Warnings               []string           `json:"warnings,omitempty"`
	VotersBefore           []string           `json:"votersBefore"`
	VotersAfter            []string           `json:"votersAfter"`
	LearnersBefore         []string           `json:"learnersBefore"`
	LearnersAfter          []string           `json:"learnersAfter"`
	QuorumBefore           int                `json:"quorumBefore"`
	QuorumAfter            int                `json:"quorumAfter"`
	FailureToleranceBefore int                `json:"failureToleranceBefore"`
	FailureToleranceAfter  int                `json:"failureToleranceAfter"`
	Members                []memberHealthJSON `json:"members"`
}

type memberHealthJSON struct {
	ID          string   `json:"id"`
	Name        string   `json:"name"`
	PeerURLs    []string `json:"peerURLs"`
	Started     bool     `json:"started"`
	IsLearner   bool     `json:"isLearner"`
	Active      bool     `json:"active"`
	ActiveSince string   `json:"activeSince"`
	Activity    string   `json:"activity"`
	Match       uint64   `json:"match"`
	Lag         uint64   `json:"lag"`
	Snapshot    bool     `json:"snapshotInFlight"`
}

func hexIDs(ids []uint64) []string {
	out := make([]string, 0, len(ids))
	for _, id := range ids {
		out = append(out, IDString(id))
	}
	return out
}

func parseIDs(s []string) ([]uint64, error) {
	out := make([]uint64, 0, len(s))
	for _, x := range s {
		id, err := ParseID(x)
		if err != nil {
			return nil, err
		}
		out = append(out, id)
	}
	return out, nil
}

// MarshalJSON writes the verdict with hex IDs.
func (v Verdict) MarshalJSON() ([]byte, error) {
	out := verdictJSON{
		Accepted: v.Accepted, Error: v.Error, Fix: v.Fix, Detail: v.Detail, Warnings: v.Warnings,
		VotersBefore: hexIDs(v.VotersBefore), VotersAfter: hexIDs(v.VotersAfter),
		LearnersBefore: hexIDs(v.LearnersBefore), LearnersAfter: hexIDs(v.LearnersAfter),
		QuorumBefore: v.QuorumBefore, QuorumAfter: v.QuorumAfter,
		FailureToleranceBefore: v.FailureToleranceBefore, FailureToleranceAfter: v.FailureToleranceAfter,
		Members: []memberHealthJSON{},
	}
	for _, m := range v.Members {
		out.Members = append(out.Members, memberHealthJSON{IDString(m.ID), m.Name, m.PeerURLs, m.Started, m.IsLearner,
			m.Active, m.ActiveSince, m.Activity, m.Match, m.Lag, m.Snapshot})
	}
	return json.Marshal(out)
}

// UnmarshalJSON reads what MarshalJSON wrote (a forwarded dry run).
func (v *Verdict) UnmarshalJSON(b []byte) error {
	var in verdictJSON
	if err := json.Unmarshal(b, &in); err != nil {
		return err
	}
	out := Verdict{
		Accepted: in.Accepted, Error: in.Error, Fix: in.Fix, Detail: in.Detail, Warnings: in.Warnings,
		QuorumBefore: in.QuorumBefore, QuorumAfter: in.QuorumAfter,
		FailureToleranceBefore: in.FailureToleranceBefore, FailureToleranceAfter: in.FailureToleranceAfter,
	}
	var err error
	for _, p := range []struct {
		dst *[]uint64
		src []string
	}{{&out.VotersBefore, in.VotersBefore}, {&out.VotersAfter, in.VotersAfter},
		{&out.LearnersBefore, in.LearnersBefore}, {&out.LearnersAfter, in.LearnersAfter}} {
		if *p.dst, err = parseIDs(p.src); err != nil {
			return err
		}
	}
	for _, m := range in.Members {
		id, err := ParseID(m.ID)
		if err != nil {
			return err
		}
		out.Members = append(out.Members, MemberHealth{id, m.Name, m.PeerURLs, m.Started, m.IsLearner,
			m.Active, m.ActiveSince, m.Activity, m.Match, m.Lag, m.Snapshot})
	}
	*v = out
	return nil
}
