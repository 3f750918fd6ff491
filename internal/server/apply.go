package server

import (
	"fmt"
	"os"
	"time"

	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"

	"github.com/cadrekv/cadre/internal/apply"
	"github.com/cadrekv/cadre/internal/membership"
	"github.com/cadrekv/cadre/internal/raftnode"
	"github.com/cadrekv/cadre/internal/storage/mvcc"
)

// result is what a proposer receives once its entry is applied.
type result struct {
	resp  proto.Message
	err   error
	index uint64 // the entry's raft index
}

// applyLoop hands committed batches, in log order, to the state machine
// (internal/apply), then does what only a running member does with the
// outcome: tell raft and the transport of conf changes, and wake the
// proposers.
func (s *Server) applyLoop() {
	defer close(s.applyDone)
	for {
		select {
		case ap := <-s.node.Applyc():
			if err := s.applyBatch(ap); err != nil {
				ap.Done()
				s.fatal(err)
				return
			}
			ap.Done()
		case <-s.stopping:
			return
		}
	}
}

func (s *Server) applyBatch(ap *raftnode.Apply) error {
	if ap.Snapshot != nil {
		if err := s.installSnapshot(ap.Snapshot); err != nil {
			return err
		}
	}
	if len(ap.Entries) == 0 {
		return nil
	}
	last := ap.Entries[len(ap.Entries)-1].GetIndex()
	// The index a local snapshot releases the WAL up to must be in the
	// backend file itself, not only in a deferred commit.
	out, err := s.applier.Apply(ap.Entries, s.node.SnapshotDue(last))
	if err != nil {
		return err
	}
	selfRemoved := false
	for _, cc := range out.ConfChanges {
		s.node.ApplyConfChange(cc.Raft)
		if cc.Fresh {
			outcome := "applied"
			if cc.Err != nil {
				outcome = "rejected"
			}
			s.metrics.MembershipChanges.WithLabelValues(cc.Action, outcome).Inc()
			s.metrics.LastMembershipIndex.Set(float64(cc.Index))
		}
		if cc.Err != nil {
			continue
		}
		s.confChangeApplied(cc)
		switch {
		case cc.Change.LeaveJoint:
			// A swapped-out member leaves only now: until raft left the
			// joint configuration, its vote still counted.
			selfRemoved = selfRemoved || s.cluster.IsRemoved(s.id)
		case cc.Change.Old != 0:
		case cc.Change.Type == raftpb.ConfChangeRemoveNode && cc.Change.NodeID == s.id:
			selfRemoved = true
		}
	}
	// Waiters are released only after the commit, so a reader that follows
	// an acknowledged write always sees it.
	for _, r := range out.Results {
		s.reqs.Trigger(r.ID, result{resp: r.Resp, err: r.Err, index: r.Index})
	}
	s.metrics.ProposalsApplied.Add(float64(len(ap.Entries)))
	s.metrics.DBTotalSize.Set(float64(s.store.Size()))
	s.node.Applied(last)
	if selfRemoved {
		s.removedFromCluster()
	}
	return nil
}

// confChangeApplied brings the transport in line with an applied change.
func (s *Server) confChangeApplied(cc apply.ConfChange) {
	id := cc.Change.NodeID
	switch {
	case cc.Change.LeaveJoint:
		// Drop the streams to members the swap removed: raft no longer
		// counts them.
		for _, gone := range s.peersNotIn(s.cluster.Members()) {
			s.removePeer(gone)
			if cc.Fresh {
				s.lg.Info("left the joint configuration; removed the replaced member's streams", "member", membership.IDString(gone))
			}
		}
		return
	case cc.Change.Old != 0:
		if cc.Fresh {
			s.lg.Info("applied membership change: replaced a member (joint consensus)", "member", membership.IDString(id),
				"replaced", membership.IDString(cc.Change.Old))
		}
		return
	}
	switch cc.Change.Type {
	case raftpb.ConfChangeAddNode, raftpb.ConfChangeAddLearnerNode, raftpb.ConfChangeUpdateNode:
		if m := s.cluster.Member(id); m != nil {
			s.addPeer(m)
			if cc.Fresh {
				s.lg.Info("applied membership change", "type", cc.Change.Type.String(), "member", membership.IDString(m.ID), "peer-urls", m.PeerURLs, "is-learner", m.IsLearner)
			}
		}
	case raftpb.ConfChangeRemoveNode:
		s.removePeer(id)
		if cc.Fresh {
			s.lg.Info("applied membership change", "type", cc.Change.Type.String(), "member", membership.IDString(id))
		}
	}
}

// installSnapshot replaces the backend with the data received from the
// leader for this snapshot, then reloads what lives in it.
func (s *Server) installSnapshot(snap *raftpb.Snapshot) error {
	index := snap.GetMetadata().GetIndex()
	p := snapPath(s.cfg.DataDir, index)
	if _, err := os.Stat(p); err != nil {
		return fmt.Errorf("snapshot %d was accepted by raft but its data %s is missing: %w", index, p, err)
	}
	s.lg.Info("installing snapshot from the leader", "index", index)
	if err := s.store.ReplaceWith(p); err != nil {
		return fmt.Errorf("installing snapshot %d: %w", index, err)
	}
	if err := s.applier.Recover(s.ClusterID()); err != nil {
		return err
	}
	for _, m := range s.cluster.Members() {
		s.addPeer(m)
	}
	applied, _ := s.store.Applied()
	s.lg.Info("installed snapshot", "index", index, "backend-applied-index", applied)
	s.node.Applied(applied)
	return nil
}

// backendCommitInterval bounds how long applied writes stay only in the WAL
// and in memory before bbolt commits them (etcd's backend batch interval).
const backendCommitInterval = 100 * time.Millisecond

// backend adapts the mvcc store to the applier's Backend.
type backend struct{ *mvcc.Store }

func (b backend) Begin() (apply.Batch, error) {
	bt, err := b.Store.Begin()
	if err != nil {
		return nil, err // not a typed nil inside the interface
	}
	return bt, nil
}
