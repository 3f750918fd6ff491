package membership

import (
	"encoding/json"
	"errors"
	"fmt"

	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

// Replace: a new member joins as a learner that records which voter it
// replaces; once it is ready, the leader swaps it in and the old voter out
// in one joint-consensus change (raft ConfChangeV2). While the joint
// configuration lasts, every decision needs a quorum of the old voters and
// a quorum of the new ones, both sets as large as before, so the cluster
// never has an even number of voters nor a larger quorum than before.
// Raft leaves the joint configuration by itself (an empty ConfChangeV2 the
// leader proposes once the swap is applied).

// ErrNotReplacement refuses a swap of a learner that was not added to
// replace that voter.
var ErrNotReplacement = errors.New("membership: the learner was not added to replace that member")

// ErrAlreadyReplaced refuses a second replacement of the same voter.
var ErrAlreadyReplaced = errors.New("membership: the member is already being replaced")

// judgeReplaceIntent checks the intent an add records: the new member
// joins as a learner and replaces one voting member nobody else replaces.
func judgeReplaceIntent(v *View, c Change) judgement {
	if !c.IsLearner {
		return refuse("a replacement joins as a learner; the swap makes it a voter", ErrNotReplacement,
			"a replacement of %s must be added as a learner", IDString(c.Replaces))
	}
	old, j := target(v, c.Replaces)
	if j.err != nil {
		return j
	}
	if old.IsLearner {
		return refuse("a learner holds no vote: remove it and add the new member instead", ErrNotLearner,
			"%s is a learner; only a voting member is replaced", labelID(v, old.ID))
	}
	for _, m := range v.Members {
		if m.Replaces == old.ID {
			return refuse(fmt.Sprintf("wait for that replacement to finish, or remove %s to cancel it", labelID(v, m.ID)), ErrAlreadyReplaced,
				"%s is already being replaced by %s", labelID(v, old.ID), labelID(v, m.ID))
		}
	}
	return judgement{}
}

// judgeSwap judges swapping learner c.ID in for voter c.Old.
func judgeSwap(v *View, c Change) judgement {
	n, j := target(v, c.ID)
	if j.err != nil {
		return j
	}
	if !n.IsLearner {
		return refuse("nothing to swap", ErrNotLearner, "%s is already a voting member", labelID(v, n.ID))
	}
	if n.Replaces != c.Old {
		return refuse("replace a member with `cadrectl member replace <old-id>` or `cadre --join URL --replace <old-id>`", ErrNotReplacement,
			"learner %s was not added to replace %s", labelID(v, n.ID), IDString(c.Old))
	}
	old, j := target(v, c.Old)
	if j.err != nil {
		return j
	}
	if old.IsLearner {
		return refuse("remove the learner instead", ErrNotLearner, "%s is a learner; only a voting member is replaced", labelID(v, old.ID))
	}
	if j := learnerReady(v, n); j.err != nil {
		return j
	}
	voters := v.voters()
	var j2 judgement
	j2.warnings = append(j2.warnings, fmt.Sprintf("%s leaves the cluster and exits (exit code 3) once the swap commits", labelID(v, old.ID)))
	if old.ID == v.Leader {
		j2.warnings = append(j2.warnings, "this replaces the leader: leadership is handed to another voter first")
	}
	if !v.StrictReconfigCheck {
		return j2
	}
	q := quorum(len(voters))
	// The joint configuration needs a quorum of the old voters...
	if j3 := needActive(v, voters, 0, q, "swapping "+labelID(v, n.ID)+" in for "+labelID(v, old.ID)+" (old voters)"); j3.err != nil {
		return j3
	}
	// ...and of the new ones, the ready learner among them.
	var rest []*Member
	for _, m := range voters {
		if m.ID != old.ID {
			rest = append(rest, m)
		}
	}
	if j3 := needActive(v, rest, 0, q-1, "swapping "+labelID(v, n.ID)+" in for "+labelID(v, old.ID)+" (new voters, besides "+label(n)+")"); j3.err != nil {
		return j3
	}
	return j2
}

// PlanStep is one step of a replace as `--dry-run` shows it: the
// configuration during it, its quorum and how many voters may fail.
type PlanStep struct {
	Step             string   `json:"step"`
	Voters           []string `json:"voters"`
	VotersOutgoing   []string `json:"votersOutgoing,omitempty"` // the old voters while the configuration is joint
	Learners         []string `json:"learners,omitempty"`
	Quorum           string   `json:"quorum"`
	FailureTolerance int      `json:"failureTolerance"`
}

// ReplacePlan is the dry-run answer of a replace: the verdict of its first
// step (adding the learner) and every step with its quorum.
type ReplacePlan struct {
	Verdict Verdict    `json:"verdict"`
	Steps   []PlanStep `json:"steps"`
}

// PlanReplace plans replacing voter old with a new member named name
// (ID id) in v. Failure tolerance counts healthy voters as the strict check
// does, the new member as healthy once it has caught up.
func PlanReplace(v View, c Change, name string) ReplacePlan {
	plan := ReplacePlan{Verdict: Evaluate(v, c)}
	old := v.member(c.Replaces)
	if old == nil {
		return plan
	}
	newLabel := name + " (new, " + IDString(c.ID) + ")"
	var voters, rest, learners []string
	activeBefore, activeRest := 0, 0
	for _, m := range v.Members {
		if m.IsLearner {
			learners = append(learners, label(m))
			continue
		}
		voters = append(voters, label(m))
		if v.active(m.ID) {
			activeBefore++
		}
		if m.ID != old.ID {
			rest = append(rest, label(m))
			if v.active(m.ID) {
				activeRest++
			}
		}
	}
	n := len(voters)
	q := quorum(n)
	qs := fmt.Sprintf("%d of %d", q, n)
	after := append(append([]string(nil), rest...), newLabel)
	tolJoint := min(activeBefore, activeRest+1) - q
	plan.Steps = []PlanStep{
		{Step: "now", Voters: voters, Learners: learners, Quorum: qs, FailureTolerance: activeBefore - q},
		{Step: "add " + newLabel + " as a learner that replaces " + label(old) + " (it does not vote)", Voters: voters, Learners: append(append([]string(nil), learners...), newLabel), Quorum: qs, FailureTolerance: activeBefore - q},
		{Step: "start " + name + "; the leader waits until it has caught up (nothing changes)", Voters: voters, Learners: append(append([]string(nil), learners...), newLabel), Quorum: qs, FailureTolerance: activeBefore - q},
		{Step: "joint configuration: " + name + " in, " + label(old) + " out, in one raft change; every decision needs a quorum of each voter set", Voters: after, VotersOutgoing: voters, Learners: learners,
			Quorum: qs + " (old voters) and " + qs + " (new voters)", FailureTolerance: tolJoint},
		{Step: "raft leaves the joint configuration by itself; " + label(old) + " exits (exit code 3)", Voters: after, Learners: learners, Quorum: qs, FailureTolerance: activeRest + 1 - q},
	}
	return plan
}

// NewSwapConfChange builds the joint-consensus change that makes learner
// n a voter and removes voter old, for one entry. requestID is the
// proposer's waiter ID (a ConfChangeV2 has no field of its own for it).
func NewSwapConfChange(n *Member, old, requestID uint64, a *Audit) (*raftpb.ConfChangeV2, error) {
	p := *n
	p.IsLearner, p.Replaces, p.AutoPromote = false, 0, false
	b, err := json.Marshal(confContext{Member: p, SwapOut: old, RequestID: requestID, Audit: a})
	if err != nil {
		return nil, fmt.Errorf("membership: encoding swap: %w", err)
	}
	return &raftpb.ConfChangeV2{
		// Explicit joint consensus that raft leaves by itself.
		Transition: new(raftpb.ConfChangeTransitionJointImplicit),
		Changes: []*raftpb.ConfChangeSingle{
			{Type: new(raftpb.ConfChangeAddNode), NodeId: new(n.ID)},
			{Type: new(raftpb.ConfChangeRemoveNode), NodeId: new(old)},
		},
		Context: b,
	}, nil
}

// NoopConfChangeV2 is what raft is told of a ConfChangeV2 refused at
// apply: a simple change of node 0, which raft ignores.
func NoopConfChangeV2() *raftpb.ConfChangeV2 {
	return &raftpb.ConfChangeV2{Changes: []*raftpb.ConfChangeSingle{{Type: new(raftpb.ConfChangeAddNode), NodeId: new(uint64(0))}}}
}

// DecodeConfChangeV2 decodes the data of an EntryConfChangeV2: a swap, or
// raft's empty change that leaves a joint configuration.
func DecodeConfChangeV2(data []byte) (*raftpb.ConfChangeV2, ConfChange, error) {
	var cc raftpb.ConfChangeV2
	if err := proto.Unmarshal(data, &cc); err != nil {
		return nil, ConfChange{}, fmt.Errorf("membership: decoding conf change v2: %w", err)
	}
	out := ConfChange{MaxLearners: -1}
	if cc.LeaveJoint() {
		out.LeaveJoint = true
		return &cc, out, nil
	}
	var c confContext
	if err := json.Unmarshal(cc.GetContext(), &c); err != nil || c.SwapOut == 0 || len(cc.GetChanges()) != 2 {
		return &cc, out, fmt.Errorf("membership: conf change v2 %v is not a swap Cadre knows", cc.GetChanges())
	}
	out.Type, out.NodeID, out.Old = raftpb.ConfChangeAddNode, c.ID, c.SwapOut
	out.Member, out.Audit, out.RequestID = &c.Member, c.Audit, c.RequestID
	return &cc, out, nil
}

// swapLocked applies a swap: the structural rules again, then learner
// cc.NodeID becomes a voter and cc.Old is removed forever.
func (c *Cluster) swapLocked(cc ConfChange) error {
	n, err := c.lookupLocked(cc.NodeID)
	if err != nil {
		return err
	}
	if err := checkPromote(n, false); err != nil {
		return err
	}
	if n.Replaces != cc.Old {
		return ErrNotReplacement
	}
	old, err := c.lookupLocked(cc.Old)
	if err != nil {
		return err
	}
	if old.IsLearner {
		return ErrNotLearner
	}
	n.IsLearner, n.Replaces, n.AutoPromote = false, 0, false
	delete(c.members, cc.Old)
	c.removed[cc.Old] = true
	return nil
}
