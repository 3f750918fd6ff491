package membership

import (
	"encoding/json"
	"fmt"
	"sort"
	"time"

	"go.etcd.io/raft/v3/raftpb"
)

// The membership audit trail: every change applied (replicated: recorded
// by the apply path of every member from what the entry carries) and every
// change refused (recorded by the member that refused it, locally).

// DefaultAuditKeep is how many applied changes the trail keeps.
const DefaultAuditKeep = 1000

// Audit is what a membership entry carries for the trail, filled in by the
// leader that judged the change.
type Audit struct {
	By      string `json:"by,omitempty"`      // who asked: user, certificate CN, "autopilot", or the client's address
	At      int64  `json:"at,omitempty"`      // Unix milliseconds, the leader's clock (informational)
	Verdict string `json:"verdict,omitempty"` // the strict check's verdict, in short
	Keep    int    `json:"keep,omitempty"`    // how many records the trail keeps (the leader's setting)
}

// AttachAudit adds a to cc's context (removes get a context of their own).
func AttachAudit(cc *raftpb.ConfChange, a *Audit) error {
	var c confContext
	if len(cc.Context) > 0 {
		if err := json.Unmarshal(cc.Context, &c); err != nil {
			return fmt.Errorf("membership: decoding change context: %w", err)
		}
	}
	c.Audit = a
	b, err := json.Marshal(c)
	if err != nil {
		return err
	}
	cc.Context = b
	return nil
}

// ConfigSummary is a configuration as the trail shows it.
type ConfigSummary struct {
	Voters   []string `json:"voters"`
	Learners []string `json:"learners,omitempty"`
}

// Summarize is ms as voters and learners (hex IDs, sorted).
func Summarize(ms []*Member) ConfigSummary {
	s := ConfigSummary{Voters: []string{}}
	for _, m := range ms {
		if m.IsLearner {
			s.Learners = append(s.Learners, IDString(m.ID))
		} else {
			s.Voters = append(s.Voters, IDString(m.ID))
		}
	}
	sort.Strings(s.Voters)
	sort.Strings(s.Learners)
	return s
}

// AuditRecord is one entry of the trail.
type AuditRecord struct {
	Index    uint64        `json:"index,omitempty"` // raft index of an applied change; 0 for a refusal
	Term     uint64        `json:"term,omitempty"`
	At       time.Time     `json:"at"`
	By       string        `json:"by"`
	Action   string        `json:"action"` // add, add-learner, remove, update, promote, force-new-cluster
	Member   string        `json:"member,omitempty"`
	Name     string        `json:"name,omitempty"`
	PeerURLs []string      `json:"peerURLs,omitempty"`
	Before   ConfigSummary `json:"before"`
	After    ConfigSummary `json:"after"`
	Verdict  string        `json:"verdict,omitempty"`
	Outcome  string        `json:"outcome"` // applied, refused: <why>, rejected at apply: <why>
	// RecordedBy is the member that recorded a refusal (refusals are not
	// replicated; each member keeps its own).
	RecordedBy string `json:"recordedBy,omitempty"`
}

// ActionOf names a change kind as the trail shows it.
func ActionOf(kind ChangeKind, learner bool) string {
	if kind == ChangeAdd && learner {
		return "add-learner"
	}
	return kind.String()
}

// ActionOfConfChange names an applied conf change.
func ActionOfConfChange(cc ConfChange, before []*Member) string {
	switch {
	case cc.LeaveJoint:
		return "leave-joint"
	case cc.Old != 0:
		return "replace"
	}
	switch cc.Type {
	case raftpb.ConfChangeAddLearnerNode:
		return "add-learner"
	case raftpb.ConfChangeAddNode:
		for _, m := range before {
			if m.ID == cc.NodeID && m.IsLearner {
				return "promote"
			}
		}
		return "add"
	case raftpb.ConfChangeRemoveNode:
		return "remove"
	case raftpb.ConfChangeUpdateNode:
		return "update"
	}
	return cc.Type.String()
}
