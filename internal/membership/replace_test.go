package membership

import (
	"errors"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"
)

// replacing is v with member 4 a learner that replaces member id.
func replacing(v View, id uint64) View {
	v.Members[3].Replaces = id
	return v
}

func TestJudgeSwap(t *testing.T) {
	swap := Change{Kind: ChangeSwap, ID: 4, Old: 3}
	for _, tc := range []struct {
		name string
		v    View
		c    Change
		want error // nil: accepted
	}{
		{"ready replacement", replacing(view(true, lead, ok2, ok3, lrn), 3), swap, nil},
		{"the leader replaced", replacing(view(true, lead, ok2, ok3, lrn), 1), Change{Kind: ChangeSwap, ID: 4, Old: 1}, nil},
		{"not added as a replacement", view(true, lead, ok2, ok3, lrn), swap, ErrNotReplacement},
		{"replaces another member", replacing(view(true, lead, ok2, ok3, lrn), 2), swap, ErrNotReplacement},
		{"learner lagging", replacing(view(true, lead, ok2, ok3, vm{name: "infra4", learner: true, up: up, match: 500}), 3), swap, ErrLearnerNotReady},
		{"learner never started", replacing(view(true, lead, ok2, ok3, vm{learner: true}), 3), swap, ErrLearnerNotReady},
		{"old voter gone", func() View {
			v := replacing(view(true, lead, ok2, ok3, lrn), 3)
			v.Removed[3] = true
			v.Members = append(v.Members[:2], v.Members[3])
			return v
		}(), swap, ErrIDNotFound},
		// The new voter set {1,2,4} needs 2 active besides nothing: 1 and 4 are.
		{"the replaced member down", replacing(view(true, lead, ok2, down3, lrn), 3), swap, nil},
		// The old set {1,2,3} needs 2 active: only the leader is.
		{"old voters unhealthy", replacing(view(true, lead, vm{name: "infra2"}, down3, lrn), 3), swap, ErrUnhealthy},
		{"old voters unhealthy, no strict check", replacing(view(false, lead, vm{name: "infra2"}, down3, lrn), 3), swap, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := Validate(tc.v, tc.c)
			if (tc.want == nil) != (err == nil) || (tc.want != nil && !errors.Is(err, tc.want)) {
				t.Fatalf("Validate = %v, want %v", err, tc.want)
			}
			if got := Evaluate(tc.v, tc.c); got.Accepted != (err == nil) {
				t.Fatalf("Evaluate accepted %v, Validate %v", got.Accepted, err)
			}
		})
	}
}

func TestJudgeReplaceIntent(t *testing.T) {
	add := Change{Kind: ChangeAdd, ID: 9, PeerURLs: []string{"http://127.0.0.1:9999"}, IsLearner: true, Replaces: 3}
	v := view(true, lead, ok2, ok3)
	if err := Validate(v, add); err != nil {
		t.Fatalf("a learner replacing a voter: %v", err)
	}
	voterAdd := add
	voterAdd.IsLearner = false
	if err := Validate(v, voterAdd); !errors.Is(err, ErrNotReplacement) {
		t.Fatalf("a voter add with a replace intent: %v, want ErrNotReplacement", err)
	}
	if err := Validate(replacing(view(true, lead, ok2, ok3, lrn), 3), add); !errors.Is(err, ErrAlreadyReplaced) && !errors.Is(err, ErrTooManyLearners) {
		t.Fatalf("a second replacement of the same voter: %v", err)
	}
	v2 := view(true, lead, ok2, ok3, lrn)
	v2.MaxLearners = 2
	if err := Validate(replacing(v2, 3), add); !errors.Is(err, ErrAlreadyReplaced) {
		t.Fatalf("a second replacement of the same voter: %v, want ErrAlreadyReplaced", err)
	}
	ofLearner := add
	ofLearner.Replaces = 4
	if err := Validate(v2, ofLearner); !errors.Is(err, ErrNotLearner) {
		t.Fatalf("replacing a learner: %v, want ErrNotLearner", err)
	}
}

// TestSwapRoundTrip: the swap entry decodes to the change it encodes, and
// applying it promotes the learner and removes the old voter in one step;
// raft's empty leave entry decodes as such and changes no member.
func TestSwapRoundTrip(t *testing.T) {
	c := New(1)
	for _, m := range []*Member{{ID: 1, Name: "a", PeerURLs: []string{peerURL(1)}}, {ID: 2, Name: "b", PeerURLs: []string{peerURL(2)}},
		{ID: 3, Name: "c", PeerURLs: []string{peerURL(3)}}, {ID: 4, Name: "d", PeerURLs: []string{peerURL(4)}, IsLearner: true, Replaces: 3}} {
		if err := c.Add(m); err != nil {
			t.Fatal(err)
		}
	}
	cc, err := NewSwapConfChange(c.Member(4), 3, 77, &Audit{By: "test"})
	if err != nil {
		t.Fatal(err)
	}
	if autoLeave, joint := cc.EnterJoint(); !joint || !autoLeave {
		t.Fatalf("swap entry: joint %v, auto-leave %v; want a joint change raft leaves by itself", joint, autoLeave)
	}
	data, _ := proto.Marshal(cc)
	_, dec, err := DecodeConfChangeV2(data)
	if err != nil || dec.NodeID != 4 || dec.Old != 3 || dec.RequestID != 77 || dec.Audit == nil || dec.LeaveJoint {
		t.Fatalf("decoded swap: %+v, %v", dec, err)
	}
	if ActionOfConfChange(dec, c.Members()) != "replace" {
		t.Errorf("action of a swap: %q", ActionOfConfChange(dec, c.Members()))
	}
	if err := c.Apply(dec); err != nil {
		t.Fatal(err)
	}
	if m := c.Member(4); m == nil || m.IsLearner || m.Replaces != 0 {
		t.Fatalf("after the swap, member 4 is %+v; want a voter without intent", m)
	}
	if c.Member(3) != nil || !c.IsRemoved(3) {
		t.Fatal("after the swap, member 3 is still there or not marked removed")
	}
	if err := c.Apply(dec); err == nil {
		t.Fatal("applying the swap twice succeeded")
	}
	_, leave, err := DecodeConfChangeV2(nil)
	if err != nil || !leave.LeaveJoint {
		t.Fatalf("raft's leave entry: %+v, %v", leave, err)
	}
	before := string(c.Marshal())
	if err := c.Apply(leave); err != nil || string(c.Marshal()) != before {
		t.Fatalf("leave entry changed the members (err %v)", err)
	}
	noop := NoopConfChangeV2()
	if _, joint := noop.EnterJoint(); joint || noop.LeaveJoint() || noop.Changes[0].GetNodeId() != 0 {
		t.Fatalf("the no-op V2 change is not a simple change of node 0: %v", noop)
	}
}

func TestPlanReplace(t *testing.T) {
	v := view(true, lead, ok2, ok3)
	plan := PlanReplace(v, Change{Kind: ChangeAdd, ID: 9, PeerURLs: []string{"http://127.0.0.1:9999"}, IsLearner: true, Replaces: 3}, "infra9")
	if !plan.Verdict.Accepted || len(plan.Steps) != 5 {
		t.Fatalf("plan: %+v", plan)
	}
	for i, s := range plan.Steps {
		if len(s.Voters) != 3 || (len(s.VotersOutgoing) != 0 && len(s.VotersOutgoing) != 3) || s.FailureTolerance != 1 {
			t.Errorf("step %d %q: voters %v outgoing %v tolerance %d; want 3 voters (3 and 3 when joint), tolerance 1", i, s.Step, s.Voters, s.VotersOutgoing, s.FailureTolerance)
		}
	}
	joint := plan.Steps[3]
	if !strings.Contains(joint.Quorum, "(old voters) and") || !strings.Contains(strings.Join(joint.Voters, ","), "infra9") || strings.Contains(strings.Join(joint.Voters, ","), "infra3") {
		t.Errorf("joint step: %+v", joint)
	}
	// With the replaced member down, the joint step tolerates no failure
	// of the others, and the plan says so.
	down := PlanReplace(view(true, lead, ok2, down3), Change{Kind: ChangeAdd, ID: 9, PeerURLs: []string{"http://127.0.0.1:9999"}, IsLearner: true, Replaces: 3}, "infra9")
	if down.Steps[0].FailureTolerance != 0 || down.Steps[4].FailureTolerance != 1 {
		t.Errorf("plan with the replaced member down: tolerance now %d, after %d; want 0 and 1", down.Steps[0].FailureTolerance, down.Steps[4].FailureTolerance)
	}
}
