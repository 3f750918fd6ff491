package membership

import (
	"encoding/json"
	"fmt"

	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

// The one encoding of membership changes in the raft log: a raftpb
// ConfChange whose context is the member (JSON). Runtime changes,
// bootstrap (raft.Peer contexts), --force-new-cluster and snapshot restore
// all encode through here, and the apply path decodes through here.

// confContext is a ConfChange's context: the member, plus the limits the
// proposer judged the change with, so that every member applies the same
// rule whatever its own flags say.
type confContext struct {
	Member
	// MaxLearners is the learner limit of an add; absent (nil) in entries
	// written before it was carried, and then not enforced at apply.
	MaxLearners *int `json:"maxLearners,omitempty"`
	// Audit is what the trail records of the change (audit.go); absent in
	// entries written before the trail, and in bootstrap and recovery.
	Audit *Audit `json:"audit,omitempty"`
	// SwapOut is the voter a swap (ConfChangeV2) removes; RequestID its
	// proposer's waiter (a ConfChangeV2 has no ID field).
	SwapOut   uint64 `json:"swapOut,omitempty"`
	RequestID uint64 `json:"requestID,omitempty"`
}

// ConfChange is one decoded membership entry.
type ConfChange struct {
	Type   raftpb.ConfChangeType
	NodeID uint64
	// Member is the context's member (add, promote, update), nil otherwise.
	Member *Member
	// MaxLearners is the learner limit carried by an add, -1 for none.
	MaxLearners int
	// RequestID is the proposer's waiter ID (0 for bootstrap and recovery).
	RequestID uint64
	// Audit is the trail's information, nil if the entry has none.
	Audit *Audit
	// Old is the voter a swap removes (Type is then AddNode: the learner
	// NodeID becomes a voter in the same change).
	Old uint64
	// LeaveJoint marks raft's empty change that ends a joint
	// configuration; it changes no member.
	LeaveJoint bool
}

// MemberContext encodes m as a ConfChange context (also raft.Peer.Context
// at bootstrap).
func MemberContext(m *Member) []byte {
	b, err := json.Marshal(confContext{Member: *m})
	if err != nil {
		panic(fmt.Sprintf("membership: encoding a member cannot fail: %v", err))
	}
	return b
}

// DecodeMemberContext reverses MemberContext.
func DecodeMemberContext(b []byte) (*Member, error) {
	var c confContext
	if err := json.Unmarshal(b, &c); err != nil {
		return nil, fmt.Errorf("membership: decoding member context: %w", err)
	}
	return &c.Member, nil
}

// NewConfChange builds the raft ConfChange of a change the leader has
// validated. m is the member after the change (nil for a remove);
// maxLearners is the leader's learner limit for an add.
func NewConfChange(kind ChangeKind, m *Member, id uint64, maxLearners int) (*raftpb.ConfChange, error) {
	cc := &raftpb.ConfChange{NodeId: new(id)}
	var ctx *confContext
	switch kind {
	case ChangeAdd:
		cc.Type = new(raftpb.ConfChangeAddNode)
		if m.IsLearner {
			cc.Type = new(raftpb.ConfChangeAddLearnerNode)
		}
		ctx = &confContext{Member: *m, MaxLearners: new(maxLearners)}
	case ChangeRemove:
		cc.Type = new(raftpb.ConfChangeRemoveNode)
	case ChangeUpdate:
		cc.Type = new(raftpb.ConfChangeUpdateNode)
		ctx = &confContext{Member: *m}
	case ChangePromote:
		// raft promotes a learner by adding it as a voter.
		cc.Type = new(raftpb.ConfChangeAddNode)
		p := *m
		p.IsLearner = false
		ctx = &confContext{Member: p}
	default:
		return nil, fmt.Errorf("membership: unknown change kind %d", kind)
	}
	if ctx != nil {
		b, err := json.Marshal(ctx)
		if err != nil {
			return nil, fmt.Errorf("membership: encoding change: %w", err)
		}
		cc.Context = b
	}
	return cc, nil
}

// RemoveEntryData is the data of a log entry removing id (used by
// --force-new-cluster, which writes such entries itself); a, if not nil,
// is what the audit trail records of it.
func RemoveEntryData(id uint64, a *Audit) []byte {
	cc := &raftpb.ConfChange{Type: new(raftpb.ConfChangeRemoveNode), NodeId: new(id)}
	if a != nil {
		if err := AttachAudit(cc, a); err != nil {
			panic(fmt.Sprintf("membership: encoding a removal's audit cannot fail: %v", err))
		}
	}
	b, err := proto.Marshal(cc)
	if err != nil {
		panic(fmt.Sprintf("membership: encoding a removal cannot fail: %v", err))
	}
	return b
}

// AddEntryData is the data of a log entry adding m as a voter (snapshot
// restore writes the new cluster's members this way).
func AddEntryData(m *Member) []byte {
	b, err := proto.Marshal(&raftpb.ConfChange{Type: new(raftpb.ConfChangeAddNode), NodeId: new(m.ID), Context: MemberContext(m)})
	if err != nil {
		panic(fmt.Sprintf("membership: encoding an add cannot fail: %v", err))
	}
	return b
}

// DecodeConfChange decodes the data of an EntryConfChange. It returns the
// raft message too: raft must be told of every conf change, applied or not.
func DecodeConfChange(data []byte) (*raftpb.ConfChange, ConfChange, error) {
	var cc raftpb.ConfChange
	if err := proto.Unmarshal(data, &cc); err != nil {
		return nil, ConfChange{}, fmt.Errorf("membership: decoding conf change: %w", err)
	}
	out := ConfChange{Type: cc.GetType(), NodeID: cc.GetNodeId(), MaxLearners: -1, RequestID: cc.GetId()}
	if len(cc.GetContext()) > 0 {
		var c confContext
		if err := json.Unmarshal(cc.GetContext(), &c); err != nil {
			return &cc, out, fmt.Errorf("membership: decoding member of conf change: %w", err)
		}
		out.Audit = c.Audit
		if cc.GetType() != raftpb.ConfChangeRemoveNode {
			out.Member = &c.Member
			if c.MaxLearners != nil {
				out.MaxLearners = *c.MaxLearners
			}
		}
	}
	return &cc, out, nil
}

// Apply applies a committed membership change to the cluster: the single
// apply path of adds, promotions, updates and removals. It uses only what
// is in the entry and the replicated member set, so every member reaches
// the same verdict; a refused change changes nothing.
func (c *Cluster) Apply(cc ConfChange) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case cc.LeaveJoint:
		return nil // the swap already changed the members
	case cc.Old != 0:
		return c.swapLocked(cc)
	}
	members := c.memberList()
	switch cc.Type {
	case raftpb.ConfChangeAddNode, raftpb.ConfChangeAddLearnerNode:
		m := cc.Member
		if m == nil {
			return fmt.Errorf("membership: add of %s carries no member", IDString(cc.NodeID))
		}
		if m.ID != cc.NodeID {
			return fmt.Errorf("membership: member ID %s does not match the change's node ID %s", IDString(m.ID), IDString(cc.NodeID))
		}
		if cc.Type == raftpb.ConfChangeAddNode {
			if old, ok := c.members[m.ID]; ok {
				// Adding a member that exists as a learner promotes it.
				if err := checkPromote(old, false); err != nil {
					return err
				}
				old.IsLearner, old.AutoPromote, old.Replaces = false, false, 0
				return nil
			}
		}
		return c.addLocked(members, m, cc.Type == raftpb.ConfChangeAddLearnerNode, cc.MaxLearners)
	case raftpb.ConfChangeRemoveNode:
		if _, err := c.lookupLocked(cc.NodeID); err != nil {
			return err
		}
		delete(c.members, cc.NodeID)
		c.removed[cc.NodeID] = true
		return nil
	case raftpb.ConfChangeUpdateNode:
		if cc.Member == nil {
			return fmt.Errorf("membership: update of %s carries no member", IDString(cc.NodeID))
		}
		m, err := c.lookupLocked(cc.NodeID)
		if err != nil {
			return err
		}
		if o, _ := peerURLOwner(members, cc.Member.PeerURLs, cc.NodeID); o != nil {
			return ErrPeerURLExists
		}
		m.PeerURLs = append([]string(nil), cc.Member.PeerURLs...)
		return nil
	}
	return fmt.Errorf("membership: configuration change %s is not supported", cc.Type)
}

func (c *Cluster) addLocked(members []*Member, m *Member, learner bool, maxLearners int) error {
	if r := checkAdd(members, c.removed, m.ID, m.PeerURLs, learner, maxLearners); r.err != nil {
		return r.err
	}
	n := m.clone()
	n.IsLearner = learner
	c.members[n.ID] = n
	return nil
}

func (c *Cluster) memberList() []*Member {
	members := make([]*Member, 0, len(c.members))
	for _, m := range c.members {
		members = append(members, m)
	}
	return members
}
