package membership

import (
	"errors"
	"testing"
	"time"

	"go.etcd.io/raft/v3/raftpb"
)

func TestComputeMemberIDDeterministicAndOrderFree(t *testing.T) {
	a := ComputeMemberID([]string{"http://127.0.0.1:2380", "http://10.0.0.1:2380"}, "tok", nil)
	b := ComputeMemberID([]string{"http://10.0.0.1:2380", "http://127.0.0.1:2380"}, "tok", nil)
	if a != b {
		t.Fatalf("URL order changed the ID: %x vs %x", a, b)
	}
	if c := ComputeMemberID([]string{"http://127.0.0.1:2380", "http://10.0.0.1:2380"}, "other", nil); c == a {
		t.Fatalf("token did not change the ID")
	}
	now := time.Unix(1700000000, 0)
	if d := ComputeMemberID([]string{"http://127.0.0.1:2380", "http://10.0.0.1:2380"}, "tok", &now); d == a {
		t.Fatalf("time did not change a runtime-added ID")
	}
}

func TestBootstrapAgreesAcrossMembers(t *testing.T) {
	initial := map[string][]string{
		"infra1": {"http://127.0.0.1:12380"},
		"infra2": {"http://127.0.0.1:22380"},
		"infra3": {"http://127.0.0.1:32380"},
	}
	cid1, ms1, err := Bootstrap(initial, "etcd-cluster")
	if err != nil {
		t.Fatal(err)
	}
	cid2, ms2, _ := Bootstrap(initial, "etcd-cluster")
	if cid1 != cid2 || len(ms1) != 3 || len(ms2) != 3 {
		t.Fatalf("bootstrap not deterministic: %x %x", cid1, cid2)
	}
	for i := range ms1 {
		if ms1[i].ID != ms2[i].ID || ms1[i].Name != ms2[i].Name {
			t.Fatalf("member %d differs: %+v vs %+v", i, ms1[i], ms2[i])
		}
	}
	cid3, _, _ := Bootstrap(initial, "another-token")
	if cid3 == cid1 {
		t.Fatalf("a different token must give a different cluster ID")
	}
	if _, _, err := Bootstrap(map[string][]string{"a": {"http://x:1"}, "b": {"http://x:1"}}, "t"); err == nil {
		t.Fatalf("duplicate peer URLs accepted")
	}
}

func TestClusterAddRemoveRules(t *testing.T) {
	c := New(1)
	m1 := &Member{ID: 10, Name: "a", PeerURLs: []string{"http://127.0.0.1:1"}}
	tests := []struct {
		name string
		op   func() error
		want error
	}{
		{"add first", func() error { return c.Add(m1) }, nil},
		{"add same id", func() error { return c.Add(&Member{ID: 10, PeerURLs: []string{"http://127.0.0.1:9"}}) }, ErrIDExists},
		{"add same peer url", func() error { return c.Add(&Member{ID: 11, PeerURLs: []string{"http://127.0.0.1:1"}}) }, ErrPeerURLExists},
		{"remove unknown", func() error { return c.Remove(99) }, ErrIDNotFound},
		{"remove", func() error { return c.Remove(10) }, nil},
		{"remove again", func() error { return c.Remove(10) }, ErrIDRemoved},
		{"re-add removed id", func() error { return c.Add(&Member{ID: 10, PeerURLs: []string{"http://127.0.0.1:5"}}) }, ErrIDRemoved},
		{"attributes of removed", func() error { return c.SetAttributes(10, "a", nil) }, ErrIDRemoved},
		{"peer url free after remove", func() error { return c.Add(&Member{ID: 12, PeerURLs: []string{"http://127.0.0.1:1"}}) }, nil},
	}
	for _, tt := range tests {
		if err := tt.op(); !errors.Is(err, tt.want) {
			t.Fatalf("%s: got %v, want %v", tt.name, err, tt.want)
		}
	}
}

func TestMarshalRoundTrip(t *testing.T) {
	c := New(7)
	_ = c.Add(&Member{ID: 1, Name: "a", PeerURLs: []string{"http://127.0.0.1:1"}, ClientURLs: []string{"http://127.0.0.1:2"}})
	_ = c.Add(&Member{ID: 2, PeerURLs: []string{"http://127.0.0.1:3"}, IsLearner: true})
	_ = c.Add(&Member{ID: 3, PeerURLs: []string{"http://127.0.0.1:4"}})
	_ = c.Remove(3)
	d, err := Unmarshal(c.Marshal())
	if err != nil {
		t.Fatal(err)
	}
	if d.ID() != 7 || len(d.Members()) != 2 || !d.IsRemoved(3) || !d.Member(2).IsLearner || d.Member(1).ClientURLs[0] != "http://127.0.0.1:2" {
		t.Fatalf("round trip lost state: %s", d.Marshal())
	}
	if d.Member(2).Started() || !d.Member(1).Started() {
		t.Fatalf("started flags wrong")
	}
}

func TestIsLearnerFollowsAddPromoteRemove(t *testing.T) {
	c := New(1)
	if err := c.Add(&Member{ID: 1, Name: "a", PeerURLs: []string{"http://127.0.0.1:1"}}); err != nil {
		t.Fatal(err)
	}
	l := &Member{ID: 2, Name: "b", PeerURLs: []string{"http://127.0.0.1:2"}}
	steps := []struct {
		name string
		cc   ConfChange
		want bool
	}{
		{"added as learner", ConfChange{Type: raftpb.ConfChangeAddLearnerNode, NodeID: 2, Member: l, MaxLearners: -1}, true},
		{"promoted", ConfChange{Type: raftpb.ConfChangeAddNode, NodeID: 2, Member: l, MaxLearners: -1}, false},
		{"removed", ConfChange{Type: raftpb.ConfChangeRemoveNode, NodeID: 2}, false},
	}
	for _, st := range steps {
		if err := c.Apply(st.cc); err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		if got := c.IsLearner(2); got != st.want {
			t.Fatalf("%s: IsLearner(2) = %v, want %v", st.name, got, st.want)
		}
		if m := c.Member(2); m != nil && m.IsLearner != st.want {
			t.Fatalf("%s: Member(2).IsLearner = %v, IsLearner(2) = %v", st.name, m.IsLearner, st.want)
		}
	}
	if c.IsLearner(1) || c.IsLearner(99) {
		t.Fatal("a voter and an unknown ID are not learners")
	}
}
