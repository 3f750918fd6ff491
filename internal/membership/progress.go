package membership

import "encoding/json"

// ChangeResult is what a membership change returns: the member it concerned
// (add, update, promote), the members after it, or a dry run's verdict.
type ChangeResult struct {
	Member  *Member   `json:"member,omitempty"`
	Members []*Member `json:"members"`
	Verdict *Verdict  `json:"verdict,omitempty"`
}

// Progress is every member's replication progress as the leader sees it;
// `cadrectl member list --progress` shows it.
type Progress struct {
	Leader  uint64
	Commit  uint64
	Members []MemberProgress
	// Raft is the leader's raft configuration: who votes, and while a
	// replace is under way (joint consensus) who voted before.
	Raft RaftConfig
}

// RaftConfig is a raft configuration, IDs in hex.
type RaftConfig struct {
	Voters         []string `json:"voters"`
	VotersOutgoing []string `json:"votersOutgoing,omitempty"`
	Learners       []string `json:"learners,omitempty"`
}

// NewRaftConfig formats raft's configuration.
func NewRaftConfig(voters, outgoing, learners []uint64) RaftConfig {
	return RaftConfig{Voters: hexIDs(voters), VotersOutgoing: hexIDs(outgoing), Learners: hexIDs(learners)}
}

// MemberProgress is one member's replication progress.
type MemberProgress struct {
	ID                 uint64
	Match              uint64 // last log index known to be replicated to it
	Lag                uint64 // entries behind the leader's commit index
	SnapshotInFlight   bool
	SnapshotBytesSent  int64
	SnapshotBytesTotal int64
}

type progressJSON struct {
	Leader  string               `json:"leader"`
	Commit  uint64               `json:"commit"`
	Members []memberProgressJSON `json:"members"`
	Raft    RaftConfig           `json:"raft"`
}

type memberProgressJSON struct {
	ID                 string `json:"id"`
	Match              uint64 `json:"match"`
	Lag                uint64 `json:"lag"`
	SnapshotInFlight   bool   `json:"snapshotInFlight"`
	SnapshotBytesSent  int64  `json:"snapshotBytesSent"`
	SnapshotBytesTotal int64  `json:"snapshotBytesTotal"`
}

// MarshalJSON writes IDs in hex, as etcdctl prints them.
func (p Progress) MarshalJSON() ([]byte, error) {
	out := progressJSON{Leader: IDString(p.Leader), Commit: p.Commit, Members: []memberProgressJSON{}, Raft: p.Raft}
	for _, m := range p.Members {
		out.Members = append(out.Members, memberProgressJSON{IDString(m.ID), m.Match, m.Lag, m.SnapshotInFlight, m.SnapshotBytesSent, m.SnapshotBytesTotal})
	}
	return json.Marshal(out)
}

// UnmarshalJSON reads what MarshalJSON wrote.
func (p *Progress) UnmarshalJSON(b []byte) error {
	var in progressJSON
	if err := json.Unmarshal(b, &in); err != nil {
		return err
	}
	lead, err := ParseID(in.Leader)
	if err != nil {
		return err
	}
	*p = Progress{Leader: lead, Commit: in.Commit, Raft: in.Raft}
	for _, m := range in.Members {
		id, err := ParseID(m.ID)
		if err != nil {
			return err
		}
		p.Members = append(p.Members, MemberProgress{id, m.Match, m.Lag, m.SnapshotInFlight, m.SnapshotBytesSent, m.SnapshotBytesTotal})
	}
	return nil
}
