package membership

import (
	"errors"
	"testing"

	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

// applyChange encodes a change as the leader does, decodes it as the apply
// path does, and applies it: the round trip every member takes.
func applyChange(t *testing.T, c *Cluster, kind ChangeKind, m *Member, id uint64, maxLearners int) error {
	t.Helper()
	cc, err := NewConfChange(kind, m, id, maxLearners)
	if err != nil {
		t.Fatal(err)
	}
	data, err := proto.Marshal(cc)
	if err != nil {
		t.Fatal(err)
	}
	raw, dec, err := DecodeConfChange(data)
	if err != nil {
		t.Fatal(err)
	}
	if raw.GetType() != cc.GetType() || dec.NodeID != id {
		t.Fatalf("round trip changed the change: %v -> %v / %+v", cc, raw, dec)
	}
	return c.Apply(dec)
}

func TestApplyUsesOnlyTheEntry(t *testing.T) {
	c := New(1)
	for _, m := range []*Member{
		{ID: 1, Name: "a", PeerURLs: []string{"http://127.0.0.1:1"}},
		{ID: 2, Name: "b", PeerURLs: []string{"http://127.0.0.1:2"}},
	} {
		if err := c.Add(m); err != nil {
			t.Fatal(err)
		}
	}
	steps := []struct {
		name        string
		kind        ChangeKind
		m           *Member
		id          uint64
		maxLearners int
		want        error
	}{
		{"learner within the carried limit", ChangeAdd, &Member{ID: 3, PeerURLs: []string{"http://127.0.0.1:3"}, IsLearner: true}, 3, 1, nil},
		{"second learner over the carried limit", ChangeAdd, &Member{ID: 4, PeerURLs: []string{"http://127.0.0.1:4"}, IsLearner: true}, 4, 1, ErrTooManyLearners},
		{"second learner with a higher carried limit", ChangeAdd, &Member{ID: 4, PeerURLs: []string{"http://127.0.0.1:4"}, IsLearner: true}, 4, 2, nil},
		{"peer URL equal up to case and slash", ChangeAdd, &Member{ID: 5, PeerURLs: []string{"HTTP://127.0.0.1:1/"}}, 5, 1, ErrPeerURLExists},
		{"promote a learner", ChangePromote, &Member{ID: 3, PeerURLs: []string{"http://127.0.0.1:3"}, IsLearner: true}, 3, 0, nil},
		{"promote a voter", ChangePromote, &Member{ID: 3, PeerURLs: []string{"http://127.0.0.1:3"}}, 3, 0, ErrNotLearner},
		{"update onto another's URL", ChangeUpdate, &Member{ID: 3, PeerURLs: []string{"http://127.0.0.1:2"}}, 3, 0, ErrPeerURLExists},
		{"update", ChangeUpdate, &Member{ID: 3, PeerURLs: []string{"http://127.0.0.1:33"}}, 3, 0, nil},
		{"remove", ChangeRemove, nil, 4, 0, nil},
		{"remove again", ChangeRemove, nil, 4, 0, ErrIDRemoved},
		{"re-add a removed ID", ChangeAdd, &Member{ID: 4, PeerURLs: []string{"http://127.0.0.1:44"}}, 4, 1, ErrIDRemoved},
	}
	for _, s := range steps {
		before := string(c.Marshal())
		err := applyChange(t, c, s.kind, s.m, s.id, s.maxLearners)
		if !errors.Is(err, s.want) {
			t.Fatalf("%s: got %v, want %v", s.name, err, s.want)
		}
		if err != nil && string(c.Marshal()) != before {
			t.Fatalf("%s: a refused change changed the cluster:\n%s\n%s", s.name, before, c.Marshal())
		}
	}
	if m := c.Member(3); m == nil || m.IsLearner || m.PeerURLs[0] != "http://127.0.0.1:33" {
		t.Fatalf("member 3 = %+v, want a voter at :33", m)
	}
}

// Entries written before the learner limit was carried decode with no
// limit, so replaying an old log never refuses what was applied before.
func TestOldAddEntryHasNoLearnerLimit(t *testing.T) {
	data, _ := proto.Marshal(&raftpb.ConfChange{Type: new(raftpb.ConfChangeAddLearnerNode), NodeId: new(uint64(9)),
		Context: []byte(`{"id":9,"peerURLs":["http://127.0.0.1:9"],"isLearner":true}`)})
	_, cc, err := DecodeConfChange(data)
	if err != nil || cc.MaxLearners != -1 || cc.Member == nil || cc.Member.ID != 9 {
		t.Fatalf("DecodeConfChange = %+v, %v", cc, err)
	}
	if m, err := DecodeMemberContext(MemberContext(&Member{ID: 7, Name: "x", PeerURLs: []string{"u"}})); err != nil || m.ID != 7 || m.Name != "x" {
		t.Fatalf("member context round trip = %+v, %v", m, err)
	}
}
