package server

import (
	"encoding/json"
	"fmt"
	"os"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"

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

// applyLoop applies committed batches in log order. It is the only writer
// of the backend and of the membership.
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
	applied, _ := s.store.Applied()
	b, err := s.store.Begin()
	if err != nil {
		return fmt.Errorf("starting backend transaction: %w", err)
	}
	type done struct {
		id  uint64
		res result
	}
	var (
		results           []done
		membershipChanged bool
		selfRemoved       bool
	)
	for _, e := range ap.Entries {
		// Entries the backend already holds (replayed after a restart, or
		// contained in an installed snapshot) are skipped, but raft must
		// still learn about configuration changes among them.
		fresh := e.GetIndex() > applied
		switch e.GetType() {
		case raftpb.EntryNormal:
			if !fresh || len(e.GetData()) == 0 {
				continue
			}
			var r pb.InternalRaftRequest
			if err := proto.Unmarshal(e.GetData(), &r); err != nil {
				b.Abort()
				return fmt.Errorf("decoding committed entry %d: %w", e.GetIndex(), err)
			}
			res, changed := s.applyRequest(b, &r)
			membershipChanged = membershipChanged || changed
			if id := r.GetHeader().GetID(); id != 0 {
				results = append(results, done{id, res})
			}
		case raftpb.EntryConfChange:
			var cc raftpb.ConfChange
			if err := proto.Unmarshal(e.GetData(), &cc); err != nil {
				b.Abort()
				return fmt.Errorf("decoding conf change at %d: %w", e.GetIndex(), err)
			}
			changed, err := s.applyConfChange(&cc, fresh)
			membershipChanged = membershipChanged || changed
			if cc.GetId() != 0 {
				results = append(results, done{cc.GetId(), result{err: err, index: e.GetIndex()}})
			}
			if cc.GetType() == raftpb.ConfChangeRemoveNode && cc.GetNodeId() == s.id {
				selfRemoved = true
			}
		}
	}
	last := ap.Entries[len(ap.Entries)-1]
	if last.GetIndex() > applied {
		if membershipChanged {
			b.SetMeta(metaMembership, s.cluster.Marshal())
		}
		// Backend commits are deferred (the WAL is the durable record), but
		// a conf change, and the index a snapshot releases the WAL up to,
		// must be in the file itself.
		if selfRemoved || hasConfChange(ap.Entries) || s.node.SnapshotDue(last.GetIndex()) {
			b.Sync()
		}
		b.SetApplied(last.GetIndex(), last.GetTerm())
		if err := b.Commit(); err != nil {
			return fmt.Errorf("committing applied entries up to %d to the backend: %w", last.GetIndex(), err)
		}
	} else {
		b.Abort()
	}
	// Waiters are released only after the commit, so a reader that follows
	// an acknowledged write always sees it.
	for _, d := range results {
		s.reqs.Trigger(d.id, d.res)
	}
	s.metrics.ProposalsApplied.Add(float64(len(ap.Entries)))
	s.metrics.DBTotalSize.Set(float64(s.store.Size()))
	s.node.Applied(last.GetIndex())
	if selfRemoved {
		s.removedFromCluster()
	}
	return nil
}

// applyRequest applies one normal entry inside the batch. It reports
// whether the membership changed.
func (s *Server) applyRequest(b *mvcc.Batch, r *pb.InternalRaftRequest) (result, bool) {
	if res, ok := s.applyLease(b, r); ok {
		return res, false
	}
	if res, ok := s.applyAuth(b, r); ok {
		return res, false
	}
	if err := s.checkLeases(r); err != nil {
		return result{err: err}, false
	}
	switch {
	case r.Put != nil:
		resp, err := b.Put(r.Put)
		return result{resp: resp, err: err}, false
	case r.DeleteRange != nil:
		resp, err := b.DeleteRange(r.DeleteRange)
		return result{resp: resp, err: err}, false
	case r.Txn != nil:
		resp, err := b.Txn(r.Txn)
		return result{resp: resp, err: err}, false
	case r.Alarm != nil:
		return s.applyAlarm(b, r.Alarm), false
	case r.Compaction != nil:
		resp, err := b.Compact(r.Compaction.GetRevision())
		return result{resp: resp, err: err}, false
	case r.ClusterMemberAttrSet != nil:
		a := r.ClusterMemberAttrSet
		err := s.cluster.SetAttributes(a.GetMember_ID(), a.GetMemberAttributes().GetName(), a.GetMemberAttributes().GetClientUrls())
		if err != nil {
			s.lg.Warn("ignoring published attributes", "member", membership.IDString(a.GetMember_ID()), "error", err.Error())
			return result{err: err}, false
		}
		return result{}, true
	}
	return result{err: fmt.Errorf("unsupported request in committed entry")}, false
}

// applyConfChange is the single apply path of membership changes. A change
// that fails validation at apply time is turned into a no-op for raft, as
// every member reaches the same verdict. It reports whether the membership
// changed and, for the proposer, why a change was refused.
func (s *Server) applyConfChange(cc *raftpb.ConfChange, fresh bool) (bool, error) {
	var err error
	if fresh {
		if err = s.applyMembership(cc); err != nil {
			s.lg.Warn("rejected configuration change at apply", "type", cc.GetType().String(), "member", membership.IDString(cc.GetNodeId()), "error", err.Error())
			cc.NodeId = new(uint64(0))
		}
	}
	s.node.ApplyConfChange(cc)
	if err != nil {
		return false, err
	}
	switch cc.GetType() {
	case raftpb.ConfChangeAddNode, raftpb.ConfChangeAddLearnerNode, raftpb.ConfChangeUpdateNode:
		if m := s.cluster.Member(cc.GetNodeId()); m != nil {
			s.addPeer(m)
			if fresh {
				s.lg.Info("applied membership change", "type", cc.GetType().String(), "member", membership.IDString(m.ID), "peer-urls", m.PeerURLs, "is-learner", m.IsLearner)
			}
		}
	case raftpb.ConfChangeRemoveNode:
		s.removePeer(cc.GetNodeId())
		if fresh {
			s.lg.Info("applied membership change", "type", cc.GetType().String(), "member", membership.IDString(cc.GetNodeId()))
		}
	}
	return fresh, nil
}

func (s *Server) applyMembership(cc *raftpb.ConfChange) error {
	switch cc.GetType() {
	case raftpb.ConfChangeAddNode, raftpb.ConfChangeAddLearnerNode:
		var m membership.Member
		if err := json.Unmarshal(cc.GetContext(), &m); err != nil {
			return fmt.Errorf("decoding member: %w", err)
		}
		if m.ID != cc.GetNodeId() {
			return fmt.Errorf("member ID %016x does not match the change's node ID %016x", m.ID, cc.GetNodeId())
		}
		if cc.GetType() == raftpb.ConfChangeAddNode {
			if old := s.cluster.Member(m.ID); old != nil {
				// Adding a member that exists as a learner promotes it.
				return s.cluster.Promote(m.ID)
			}
		}
		m.IsLearner = cc.GetType() == raftpb.ConfChangeAddLearnerNode
		if m.IsLearner && s.cfg.MaxLearners >= 0 && s.learnerCount() >= s.cfg.MaxLearners {
			return membership.ErrTooManyLearners
		}
		return s.cluster.Add(&m)
	case raftpb.ConfChangeRemoveNode:
		return s.cluster.Remove(cc.GetNodeId())
	case raftpb.ConfChangeUpdateNode:
		var m membership.Member
		if err := json.Unmarshal(cc.GetContext(), &m); err != nil {
			return fmt.Errorf("decoding member: %w", err)
		}
		return s.cluster.UpdatePeerURLs(cc.GetNodeId(), m.PeerURLs)
	}
	return fmt.Errorf("configuration change %s is not supported", cc.GetType())
}

func (s *Server) learnerCount() int {
	n := 0
	for _, m := range s.cluster.Members() {
		if m.IsLearner {
			n++
		}
	}
	return n
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
	if err := s.loadMembership(s.ClusterID()); err != nil {
		return err
	}
	if err := s.recoverLeases(); err != nil {
		return err
	}
	if err := s.recoverAlarms(); err != nil {
		return err
	}
	if err := s.recoverAuth(); err != nil {
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

func hasConfChange(ents []*raftpb.Entry) bool {
	for _, e := range ents {
		if t := e.GetType(); t == raftpb.EntryConfChange || t == raftpb.EntryConfChangeV2 {
			return true
		}
	}
	return false
}
