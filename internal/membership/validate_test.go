package membership

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// vm describes one member of a test view. Member i+1 has ID i+1; member 1
// is the leader.
type vm struct {
	name    string        // "" = unstarted
	learner bool          // non-voting
	up      time.Duration // connected to the leader for this long; 0 = not connected
	match   int64         // -1: no progress known; otherwise Commit - match is the lag
}

// view builds a View: commit index 1000, health interval 5s, at most one
// learner, learners may lag 100 entries. Member i is at
// http://127.0.0.1:<i>2380.
func view(strict bool, ms ...vm) View {
	v := View{
		Removed: map[uint64]bool{}, Leader: 1, ActiveSince: map[uint64]time.Time{}, Now: t0,
		HealthInterval: 5 * time.Second, Match: map[uint64]uint64{}, Commit: 1000,
		SnapshotInFlight: map[uint64]bool{}, StrictReconfigCheck: strict, MaxLearners: 1, MaxLearnerLag: 100,
	}
	for i, m := range ms {
		id := uint64(i + 1)
		v.Members = append(v.Members, &Member{ID: id, Name: m.name, IsLearner: m.learner, PeerURLs: []string{peerURL(id)}})
		if m.up > 0 {
			v.ActiveSince[id] = t0.Add(-m.up)
		}
		if m.match >= 0 {
			v.Match[id] = 1000 - uint64(m.match)
		}
	}
	return v
}

func peerURL(id uint64) string { return fmt.Sprintf("http://127.0.0.1:%d2380", id) }

const up = time.Minute

var (
	lead  = vm{name: "infra1"}
	ok2   = vm{name: "infra2", up: up}
	ok3   = vm{name: "infra3", up: up}
	down3 = vm{name: "infra3"}
	new3  = vm{name: "infra3", up: 2 * time.Second}
	unst  = vm{}
	lrn   = vm{name: "infra4", learner: true, up: up}
)

// with returns a changed copy of v; the maps are copied so cases sharing a
// base view stay independent.
func with(v View, f func(*View)) View {
	v.Removed = copyMap(v.Removed)
	v.ActiveSince = copyMap(v.ActiveSince)
	v.Match = copyMap(v.Match)
	v.SnapshotInFlight = copyMap(v.SnapshotInFlight)
	f(&v)
	return v
}

func copyMap[V any](m map[uint64]V) map[uint64]V {
	out := make(map[uint64]V, len(m))
	for k, x := range m {
		out[k] = x
	}
	return out
}

type validateCase struct {
	name   string
	v      View
	c      Change
	want   error    // nil = accepted
	wantIn []string // substrings of the error message
}

func validateCases() []validateCase {
	add := func(urls ...string) Change { return Change{Kind: ChangeAdd, ID: 99, PeerURLs: urls} }
	addV := add("http://10.0.0.9:2380")
	addL := Change{Kind: ChangeAdd, ID: 99, PeerURLs: []string{"http://10.0.0.9:2380"}, IsLearner: true}
	rm := func(id uint64) Change { return Change{Kind: ChangeRemove, ID: id} }
	upd := func(id uint64, urls ...string) Change { return Change{Kind: ChangeUpdate, ID: id, PeerURLs: urls} }
	pro := func(id uint64) Change { return Change{Kind: ChangePromote, ID: id} }
	three := view(true, lead, ok2, ok3)
	withLrn := func(strict bool, lag int64) View {
		l := lrn
		l.match = lag
		return view(strict, lead, ok2, ok3, l)
	}
	return []validateCase{
		// ADD: static checks.
		{"add without URLs", three, add(), ErrBadURLs, []string{"no peer URLs"}},
		{"add URL without scheme", three, add("localhost:2380"), ErrBadURLs, []string{`"localhost:2380"`, "http://"}},
		{"add URL without port", three, add("http://10.0.0.9"), ErrBadURLs, []string{"host:port"}},
		{"add URL with path", three, add("http://10.0.0.9:2380/x"), ErrBadURLs, []string{"no path"}},
		{"add URL with trailing slash", three, add("http://10.0.0.9:2380/"), ErrBadURLs, nil},
		{"add unix URL", three, add("unix://sock:1"), ErrBadURLs, nil},
		{"add URL bad port", three, add("http://10.0.0.9:99999"), ErrBadURLs, []string{"99999"}},
		{"add URL twice", three, add("http://10.0.0.9:2380", "http://10.0.0.9:2380"), ErrBadURLs, []string{"twice"}},
		{"add https ok", three, add("https://node-9.example:2380"), nil, nil},
		{"add removed ID", with(three, func(v *View) { v.Removed[99] = true }), addV, ErrIDRemoved, []string{"0000000000000063"}},
		{"add existing ID", three, Change{Kind: ChangeAdd, ID: 2, PeerURLs: []string{"http://10.0.0.9:2380"}}, ErrIDExists, nil},
		{"add used URL", three, add(peerURL(2)), ErrPeerURLExists, []string{"infra2 (0000000000000002)"}},
		{"add used URL other case", three, add("HTTP://127.0.0.1:22380"), ErrPeerURLExists, nil},
		{"add learner over cap", withLrn(true, 0), addL, ErrTooManyLearners, []string{"1 learner(s) (infra4)", "at most 1"}},
		{"add learner under raised cap", with(withLrn(true, 0), func(v *View) { v.MaxLearners = 2 }), addL, nil, nil},
		{"add learner cap 0", with(three, func(v *View) { v.MaxLearners = 0 }), addL, ErrTooManyLearners, nil},
		{"add learner over cap strict off", withLrn(false, 0), addL, ErrTooManyLearners, nil},
		// ADD: strict checks.
		{"add voter healthy", three, addV, nil, nil},
		{"add voter 2 of 3 started", view(true, lead, ok2, vm{up: up}), addV, ErrNotEnoughStarted,
			[]string{"4 voters (quorum 3)", "only 2 voter(s) have started (infra1, infra2; unstarted: 0000000000000003)"}},
		{"add voter one down", view(true, lead, ok2, down3), addV, ErrUnhealthy,
			[]string{"adding a voter needs 3 voter(s) in contact with the leader for 5s, only 2 are (infra1, infra2; infra3 not connected)"}},
		{"add voter one too new", view(true, lead, ok2, new3), addV, ErrUnhealthy, []string{"infra3 connected for only 2s"}},
		{"add voter health boundary exactly 5s", view(true, lead, ok2, vm{name: "infra3", up: 5 * time.Second}), addV, nil, nil},
		{"add voter 5 with 2 down", view(true, lead, ok2, ok3, vm{name: "infra4"}, vm{name: "infra5"}), addV, ErrUnhealthy, []string{"needs 4", "only 3"}},
		{"add voter 5 with 1 down", view(true, lead, ok2, ok3, vm{name: "infra4", up: up}, vm{name: "infra5"}), addV, nil, nil},
		{"grow 1 to 2", view(true, lead), addV, nil, nil},
		{"grow 2 to 3 with second unstarted", view(true, lead, unst), addV, ErrNotEnoughStarted, []string{"3 voters (quorum 2)", "only 1"}},
		{"add voter one down strict off", view(false, lead, vm{name: "infra2"}, down3), addV, nil, nil},
		{"add learner one down", view(true, lead, ok2, down3), addL, nil, nil}, // etcd would refuse: quorum(4)
		{"add learner two down", view(true, lead, vm{name: "infra2"}, down3), addL, ErrUnhealthy, []string{"adding a learner needs 2", "only 1"}},
		{"add learner with unstarted voter", view(true, lead, ok2, vm{up: up}), addL, nil, nil},
		{"add learner to one", view(true, lead), addL, nil, nil},
		// REMOVE.
		{"remove unknown", three, rm(42), ErrIDNotFound, []string{"no member has ID 000000000000002a"}},
		{"remove removed", with(three, func(v *View) { v.Removed[42] = true }), rm(42), ErrIDNotFound, []string{"was removed"}},
		{"remove learner all down", view(true, lead, vm{name: "infra2"}, down3, vm{name: "infra4", learner: true}), rm(4), nil, nil},
		{"remove last voter", view(true, lead), rm(1), ErrLastVoter, []string{"only voting member"}},
		{"remove last voter strict off", view(false, lead, lrn), rm(1), ErrLastVoter, nil},
		{"remove voter healthy", three, rm(2), nil, nil},
		{"remove leader healthy", three, rm(1), nil, nil},
		{"remove inactive voter", view(true, lead, ok2, down3), rm(3), nil, nil},
		{"remove new (not yet active) voter", view(true, lead, ok2, new3), rm(3), nil, nil},
		{"remove active voter while another down", view(true, lead, ok2, down3), rm(2), ErrUnhealthy,
			[]string{"removing infra2 (0000000000000002) needs 2 voter(s)", "only 1 is (infra1; infra3 not connected)"}},
		{"remove active voter while another down strict off", view(false, lead, ok2, down3), rm(2), nil, nil},
		{"remove voter leaving too few started", view(true, lead, ok2, vm{up: up}), rm(2), ErrNotEnoughStarted,
			[]string{"leaves 2 voters (quorum 2) but only 1"}},
		{"remove unstarted after failed 1 to 2", view(true, lead, unst), rm(2), nil, nil},
		{"remove from 2 healthy", view(true, lead, ok2), rm(2), nil, nil},
		// UPDATE.
		{"update unknown", three, upd(42, "http://10.0.0.9:2380"), ErrIDNotFound, nil},
		{"update removed", with(three, func(v *View) { v.Removed[42] = true }), upd(42, "http://10.0.0.9:2380"), ErrIDNotFound, nil},
		{"update to another's URL", three, upd(2, peerURL(3)), ErrPeerURLExists, []string{"infra3"}},
		{"update to own URL", three, upd(2, peerURL(2)), nil, nil},
		{"update bad URL", three, upd(2, "10.0.0.9"), ErrBadURLs, nil},
		{"update all down", view(true, lead, vm{name: "infra2"}, down3), upd(2, "http://10.0.0.9:2380"), nil, nil},
		// PROMOTE.
		{"promote unknown", three, pro(42), ErrIDNotFound, nil},
		{"promote removed", with(three, func(v *View) { v.Removed[42] = true }), pro(42), ErrIDNotFound, nil},
		{"promote voter", three, pro(2), ErrNotLearner, []string{"infra2 (0000000000000002) is already a voting member"}},
		{"promote at lag bound", withLrn(true, 100), pro(4), nil, nil},
		{"promote past lag bound", withLrn(true, 101), pro(4), ErrLearnerNotReady,
			[]string{"101 entries behind the leader's commit index 1000 (match 899)", "at most 100"}},
		{"promote past lag bound strict off", withLrn(false, 101), pro(4), ErrLearnerNotReady, nil},
		{"remove freshly connected voter while another is down", view(true, lead, vm{name: "infra2"}, new3), rm(3), ErrUnhealthy, nil},
		{"promote without progress", withLrn(true, -1), pro(4), ErrLearnerNotReady, []string{"not replicating", "match 0"}},
		{"promote never started", with(withLrn(true, 0), func(v *View) {
			for _, m := range v.Members {
				if m.ID == 4 {
					m.Name = ""
				}
			}
		}), pro(4), ErrLearnerNotReady, []string{"not replicating", "started: false"}},
		{"promote disconnected", with(withLrn(true, 0), func(v *View) { delete(v.ActiveSince, 4) }), pro(4), ErrLearnerNotReady, []string{"connected: false"}},
		{"promote far behind", withLrn(true, 101), pro(4), ErrLearnerNotReady, []string{"101 entries behind"}},
		{"promote ahead of commit", with(withLrn(true, 0), func(v *View) { v.Match[4] = 1005 }), pro(4), nil, nil},
		{"promote snapshot in flight", with(withLrn(true, 0), func(v *View) { v.SnapshotInFlight[4] = true }), pro(4), ErrLearnerNotReady, []string{"snapshot in flight"}},
		{"promote too few started", view(true, lead, unst, unst, lrn), pro(4), ErrNotEnoughStarted,
			[]string{"4 voters (quorum 3)", "only 1 voter(s) plus the learner"}},
		{"promote too few started strict off", view(false, lead, unst, unst, lrn), pro(4), nil, nil},
		{"promote with one unstarted", view(true, lead, unst, lrn), pro(3), nil, nil},
		// Unknown kind.
		{"unknown kind", three, Change{Kind: 9, ID: 2}, errors.New("any"), []string{"unknown change kind 9"}},
	}
}

func TestValidate(t *testing.T) {
	for _, tc := range validateCases() {
		t.Run(tc.name, func(t *testing.T) {
			err := Validate(tc.v, tc.c)
			switch {
			case tc.want == nil && err != nil:
				t.Fatalf("refused: %v", err)
			case tc.want != nil && err == nil:
				t.Fatalf("accepted, want %v", tc.want)
			case tc.want != nil && tc.want.Error() != "any" && !errors.Is(err, tc.want):
				t.Fatalf("error %v, want %v", err, tc.want)
			}
			for _, s := range tc.wantIn {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("message %q lacks %q", err, s)
				}
			}
		})
	}
}

func TestLastVoterIsNotEnoughStarted(t *testing.T) {
	err := Validate(view(true, lead), Change{Kind: ChangeRemove, ID: 1})
	if !errors.Is(err, ErrLastVoter) || !errors.Is(err, ErrNotEnoughStarted) {
		t.Fatalf("got %v", err)
	}
	if got := EtcdError(err); got != "etcdserver: re-configuration failed due to not enough started members" {
		t.Fatalf("etcd text %q", got)
	}
}

func TestEvaluateAgreesWithValidate(t *testing.T) {
	for _, tc := range validateCases() {
		t.Run(tc.name, func(t *testing.T) {
			err := Validate(tc.v, tc.c)
			vd := Evaluate(tc.v, tc.c)
			if vd.Accepted != (err == nil) {
				t.Fatalf("Evaluate accepted=%v, Validate %v", vd.Accepted, err)
			}
			if err == nil {
				if vd.Error != "" || vd.Detail != "" || vd.Fix != "" {
					t.Fatalf("accepted verdict carries an error: %+v", vd)
				}
				return
			}
			if vd.Detail != err.Error() || vd.Error != EtcdError(err) || vd.Fix == "" {
				t.Fatalf("verdict %+v for %v", vd, err)
			}
			if tc.want != nil && tc.want.Error() != "any" && !strings.HasPrefix(vd.Error, "etcdserver: ") {
				t.Fatalf("etcd text %q", vd.Error)
			}
			if len(vd.Members) != len(tc.v.Members) || vd.QuorumBefore != len(vd.VotersBefore)/2+1 || vd.QuorumAfter != len(vd.VotersAfter)/2+1 {
				t.Fatalf("verdict shape %+v", vd)
			}
		})
	}
}

func TestEvaluateQuorumAndTolerance(t *testing.T) {
	cases := []struct {
		name                       string
		v                          View
		c                          Change
		votersAfter, learnersAfter []uint64
		qb, qa, ftb, fta           int
	}{
		{"add voter to 3 healthy", view(true, lead, ok2, ok3), Change{Kind: ChangeAdd, ID: 9, PeerURLs: []string{"http://10.0.0.9:2380"}},
			[]uint64{1, 2, 3, 9}, []uint64{}, 2, 3, 1, 0},
		{"grow 1 to 2", view(true, lead), Change{Kind: ChangeAdd, ID: 9, PeerURLs: []string{"http://10.0.0.9:2380"}},
			[]uint64{1, 9}, []uint64{}, 1, 2, 0, -1},
		{"remove down voter", view(true, lead, ok2, down3), Change{Kind: ChangeRemove, ID: 3},
			[]uint64{1, 2}, []uint64{}, 2, 2, 0, 0},
		{"remove healthy voter refused still shows after", view(true, lead, ok2, down3), Change{Kind: ChangeRemove, ID: 2},
			[]uint64{1, 3}, []uint64{}, 2, 2, 0, -1},
		{"add learner", view(true, lead, ok2, ok3), Change{Kind: ChangeAdd, ID: 9, PeerURLs: []string{"http://10.0.0.9:2380"}, IsLearner: true},
			[]uint64{1, 2, 3}, []uint64{9}, 2, 2, 1, 1},
		{"promote learner", view(true, lead, ok2, ok3, lrn), Change{Kind: ChangePromote, ID: 4},
			[]uint64{1, 2, 3, 4}, []uint64{}, 2, 3, 1, 1},
		{"remove learner", view(true, lead, ok2, ok3, lrn), Change{Kind: ChangeRemove, ID: 4},
			[]uint64{1, 2, 3}, []uint64{}, 2, 2, 1, 1},
		{"update", view(true, lead, ok2, ok3), Change{Kind: ChangeUpdate, ID: 2, PeerURLs: []string{"http://10.0.0.9:2380"}},
			[]uint64{1, 2, 3}, []uint64{}, 2, 2, 1, 1},
		{"remove unknown changes nothing", view(true, lead, ok2, ok3), Change{Kind: ChangeRemove, ID: 42},
			[]uint64{1, 2, 3}, []uint64{}, 2, 2, 1, 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			vd := Evaluate(tc.v, tc.c)
			if !reflect.DeepEqual(vd.VotersAfter, tc.votersAfter) || !reflect.DeepEqual(vd.LearnersAfter, tc.learnersAfter) {
				t.Fatalf("after: voters %v learners %v", vd.VotersAfter, vd.LearnersAfter)
			}
			if vd.QuorumBefore != tc.qb || vd.QuorumAfter != tc.qa || vd.FailureToleranceBefore != tc.ftb || vd.FailureToleranceAfter != tc.fta {
				t.Fatalf("quorum %d->%d tolerance %d->%d, want %d->%d %d->%d", vd.QuorumBefore, vd.QuorumAfter,
					vd.FailureToleranceBefore, vd.FailureToleranceAfter, tc.qb, tc.qa, tc.ftb, tc.fta)
			}
		})
	}
}

func TestEvaluateMembersAndWarnings(t *testing.T) {
	l := lrn
	l.match = 40
	v := view(true, lead, ok2, new3, l)
	v.SnapshotInFlight[4] = true
	vd := Evaluate(v, Change{Kind: ChangePromote, ID: 4})
	if vd.Accepted || !strings.Contains(vd.Detail, "snapshot in flight") || !strings.Contains(vd.Fix, "member list") {
		t.Fatalf("verdict %+v", vd)
	}
	want := []MemberHealth{
		{ID: 1, Name: "infra1", PeerURLs: []string{peerURL(1)}, Started: true, Active: true, Activity: "the leader", Match: 1000},
		{ID: 2, Name: "infra2", PeerURLs: []string{peerURL(2)}, Started: true, Active: true, ActiveSince: "2026-03-01T11:59:00Z", Activity: "connected for 1m0s", Match: 1000},
		{ID: 3, Name: "infra3", PeerURLs: []string{peerURL(3)}, Started: true, ActiveSince: "2026-03-01T11:59:58Z", Activity: "connected for only 2s", Match: 1000},
		{ID: 4, Name: "infra4", PeerURLs: []string{peerURL(4)}, Started: true, IsLearner: true, Active: true, ActiveSince: "2026-03-01T11:59:00Z", Activity: "connected for 1m0s", Match: 960, Lag: 40, Snapshot: true},
	}
	if !reflect.DeepEqual(vd.Members, want) {
		t.Fatalf("members\n got %+v\nwant %+v", vd.Members, want)
	}
	grow := Evaluate(view(true, lead), Change{Kind: ChangeAdd, ID: 9, PeerURLs: []string{"http://10.0.0.9:2380"}})
	if !grow.Accepted || len(grow.Warnings) != 1 || !strings.Contains(grow.Warnings[0], "stall") {
		t.Fatalf("1->2 verdict %+v", grow)
	}
}

func TestVerdictJSON(t *testing.T) {
	vd := Evaluate(view(true, lead, ok2, down3), Change{Kind: ChangeAdd, ID: 0xabc, PeerURLs: []string{"http://10.0.0.9:2380"}})
	b, err := json.Marshal(vd)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{`"accepted":false`, `"error":"etcdserver: unhealthy cluster"`, `"votersAfter":["0000000000000001","0000000000000002","0000000000000003","0000000000000abc"]`,
		`"quorumAfter":3`, `"failureToleranceBefore":0`, `"activeSince":""`, `"isLearner":false`} {
		if !strings.Contains(string(b), s) {
			t.Errorf("JSON lacks %s: %s", s, b)
		}
	}
	var back Verdict
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back, vd) {
		t.Fatalf("round trip\n got %+v\nwant %+v", back, vd)
	}
}

func TestEtcdErrorTexts(t *testing.T) {
	for err, want := range map[error]string{
		ErrUnhealthy:                      "etcdserver: unhealthy cluster",
		fmt.Errorf("x: %w", ErrIDRemoved): "etcdserver: member not found",
		ErrPeerURLExists:                  "etcdserver: Peer URLs already exists",
		errors.New("other"):               "other",
	} {
		if got := EtcdError(err); got != want {
			t.Errorf("EtcdError(%v) = %q, want %q", err, got, want)
		}
	}
}
