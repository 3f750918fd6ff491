// Package membership is the one home of Cadre's cluster membership: the
// member set, removed IDs, ID derivation, and the single apply path through
// which every membership change (bootstrap, add, remove, update, promote,
// publish) passes after raft commits it.
package membership

import (
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"sync"

	"go.etcd.io/raft/v3/raftpb"
)

var (
	ErrIDRemoved     = errors.New("membership: ID removed")
	ErrIDExists      = errors.New("membership: ID exists")
	ErrIDNotFound    = errors.New("membership: ID not found")
	ErrPeerURLExists = errors.New("membership: peerURL exists")
)

// Member is one member of the cluster as every member agrees on it.
type Member struct {
	ID         uint64   `json:"id"`
	Name       string   `json:"name,omitempty"`
	PeerURLs   []string `json:"peerURLs"`
	ClientURLs []string `json:"clientURLs,omitempty"`
	IsLearner  bool     `json:"isLearner,omitempty"`
	// AddedAt is when the leader judged the add (Unix seconds, its clock;
	// informational): how long an unstarted member has been waiting.
	// Carried in the add entry, so every member agrees on it.
	AddedAt int64 `json:"addedAt,omitempty"`
	// Incarnation is the data dir this member last recorded (see
	// schema.WALMetadata); peers refuse the member ID with another.
	Incarnation uint64 `json:"incarnation,omitempty"`
	// AutoPromote marks a learner added by `cadre --join`: the leader
	// promotes it once it is ready, whatever the autopilot settings.
	AutoPromote bool `json:"autoPromote,omitempty"`
	// Replaces marks a learner added to take a voter's place (`member
	// replace`, `cadre --join --replace`): once it is ready, the leader
	// swaps it in and that voter out in one joint-consensus change.
	Replaces uint64 `json:"replaces,omitempty"`
}

// Started reports whether the member has published its name: a member added
// at runtime has none until it starts and publishes (etcd's rule).
func (m *Member) Started() bool { return m.Name != "" }

func (m *Member) clone() *Member {
	c := *m
	c.PeerURLs = append([]string(nil), m.PeerURLs...)
	c.ClientURLs = append([]string(nil), m.ClientURLs...)
	return &c
}

// Cluster is the membership state. It is changed only by the apply path
// (after raft commits) and read by everyone else through copies.
type Cluster struct {
	mu      sync.RWMutex
	id      uint64
	members map[uint64]*Member
	removed map[uint64]bool
}

// New returns an empty cluster with the given ID.
func New(clusterID uint64) *Cluster {
	return &Cluster{id: clusterID, members: map[uint64]*Member{}, removed: map[uint64]bool{}}
}

// ID returns the cluster ID.
func (c *Cluster) ID() uint64 {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.id
}

// Members returns copies of all members sorted by ID.
func (c *Cluster) Members() []*Member {
	c.mu.RLock()
	defer c.mu.RUnlock()
	out := make([]*Member, 0, len(c.members))
	for _, m := range c.members {
		out = append(out, m.clone())
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// Member returns a copy of one member, or nil.
func (c *Cluster) Member(id uint64) *Member {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if m, ok := c.members[id]; ok {
		return m.clone()
	}
	return nil
}

// IsLearner reports whether id is a learner of the cluster. It is asked on
// every client request (learners refuse most), so it reads in place instead
// of cloning the member as Member does.
func (c *Cluster) IsLearner(id uint64) bool {
	c.mu.RLock()
	defer c.mu.RUnlock()
	m, ok := c.members[id]
	return ok && m.IsLearner
}

// IsRemoved reports whether id was removed from the cluster.
func (c *Cluster) IsRemoved(id uint64) bool {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.removed[id]
}

// RemovedIDs returns the set of removed member IDs.
func (c *Cluster) RemovedIDs() map[uint64]bool {
	c.mu.RLock()
	defer c.mu.RUnlock()
	out := make(map[uint64]bool, len(c.removed))
	for id := range c.removed {
		out[id] = true
	}
	return out
}

// Add adds m as it is (learner or voter) under the structural rules, with
// no learner limit: how bootstrap and snapshot restore build a member set.
// Runtime changes go through Apply.
func (c *Cluster) Add(m *Member) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.addLocked(c.memberList(), m, m.IsLearner, -1)
}

// Remove removes a member and remembers its ID forever.
func (c *Cluster) Remove(id uint64) error {
	return c.Apply(ConfChange{Type: raftpb.ConfChangeRemoveNode, NodeID: id})
}

// SetAttributes records a member's published name and client URLs.
// SetIncarnation records the data dir incarnation of member id. A member
// keeps the one it first recorded: a different one is refused (that data
// dir is not the member's), the same one is a no-op.
func (c *Cluster) SetIncarnation(id, incarnation uint64) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	m, ok := c.members[id]
	if !ok {
		return fmt.Errorf("%w: %s", ErrIDNotFound, IDString(id))
	}
	if m.Incarnation != 0 && m.Incarnation != incarnation {
		return fmt.Errorf("membership: member %s already recorded data dir incarnation %s, not %s", IDString(id), IDString(m.Incarnation), IDString(incarnation))
	}
	m.Incarnation = incarnation
	return nil
}

func (c *Cluster) SetAttributes(id uint64, name string, clientURLs []string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	m, err := c.lookupLocked(id)
	if err != nil {
		return err
	}
	m.Name = name
	m.ClientURLs = append([]string(nil), clientURLs...)
	return nil
}

// snapshot is the persisted form, stored in the backend with the data it
// belongs to and therefore shipped inside every snapshot.
type snapshot struct {
	ClusterID uint64    `json:"clusterID"`
	Members   []*Member `json:"members"`
	Removed   []uint64  `json:"removed,omitempty"`
}

// Marshal encodes the whole membership state.
func (c *Cluster) Marshal() []byte {
	c.mu.RLock()
	s := snapshot{ClusterID: c.id}
	for _, m := range c.members {
		s.Members = append(s.Members, m.clone())
	}
	for id := range c.removed {
		s.Removed = append(s.Removed, id)
	}
	c.mu.RUnlock()
	sort.Slice(s.Members, func(i, j int) bool { return s.Members[i].ID < s.Members[j].ID })
	sort.Slice(s.Removed, func(i, j int) bool { return s.Removed[i] < s.Removed[j] })
	b, err := json.Marshal(s)
	if err != nil {
		panic(fmt.Sprintf("membership: marshal cannot fail: %v", err))
	}
	return b
}

// Unmarshal decodes state written by Marshal.
func Unmarshal(b []byte) (*Cluster, error) {
	var s snapshot
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("membership: decoding stored membership: %w", err)
	}
	c := New(s.ClusterID)
	for _, m := range s.Members {
		c.members[m.ID] = m
	}
	for _, id := range s.Removed {
		c.removed[id] = true
	}
	return c, nil
}

// Load decodes the membership stored with the backend data (raw as
// written by Marshal), or an empty cluster with clusterID when none is.
func Load(raw []byte, clusterID uint64) (*Cluster, error) {
	if raw == nil {
		return New(clusterID), nil
	}
	return Unmarshal(raw)
}

// ReplaceWith swaps in the state of o (after a snapshot was installed).
func (c *Cluster) ReplaceWith(o *Cluster) {
	o.mu.RLock()
	defer o.mu.RUnlock()
	c.mu.Lock()
	defer c.mu.Unlock()
	c.id = o.id
	c.members = map[uint64]*Member{}
	for id, m := range o.members {
		c.members[id] = m.clone()
	}
	c.removed = map[uint64]bool{}
	for id := range o.removed {
		c.removed[id] = true
	}
}

// lookupLocked finds a live member; callers hold mu. A removed ID is
// reported as such, so an apply of a stale change can tell the two apart.
func (c *Cluster) lookupLocked(id uint64) (*Member, error) {
	if c.removed[id] {
		return nil, ErrIDRemoved
	}
	m, ok := c.members[id]
	if !ok {
		return nil, ErrIDNotFound
	}
	return m, nil
}

// SetID sets the cluster ID (a joining member learns it from its peers).
func (c *Cluster) SetID(id uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.id = id
}
