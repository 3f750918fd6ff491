package server

import (
	"context"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"

	"github.com/cadrekv/cadre/internal/cerr"
	"github.com/cadrekv/cadre/internal/membership"
)

// corruptCheckLoop is the leader's periodic data check (--corrupt-check-time):
// every member's key history is hashed at the leader's current revision; a
// member whose hash differs from the majority's gets the CORRUPT alarm
// through raft. From then on the cluster refuses writes (etcd's
// "corrupt cluster") until an operator replaces the member and disarms.
func (s *Server) corruptCheckLoop() {
	if s.cfg.CorruptCheckTime <= 0 {
		return
	}
	s.lg.Info("periodic corruption check enabled", "interval", s.cfg.CorruptCheckTime.String())
	t := time.NewTicker(s.cfg.CorruptCheckTime)
	defer t.Stop()
	for {
		select {
		case <-s.stopping:
			return
		case <-t.C:
			if s.node.IsLeader() && !s.alarms.Has(pb.AlarmType_CORRUPT) {
				s.corruptCheckOnce()
			}
		}
	}
}

// corruptCheckOnce runs one round. Members that cannot answer at the
// revision (down, behind, compacted differently) are left out of the vote.
func (s *Server) corruptCheckOnce() {
	h, rev, comp, err := s.store.HashKV(0)
	if err != nil {
		s.lg.Warn("periodic corruption check: hashing local data failed", "error", err.Error())
		return
	}
	hashes := map[uint64]uint32{s.id: h}
	votes := map[uint32]int{h: 1}
	for _, m := range s.cluster.Members() {
		if m.ID == s.id || len(m.PeerURLs) == 0 {
			continue
		}
		peer, ok := s.peerHash(m.PeerURLs[0], rev)
		if !ok || peer.Compacted != comp || peer.Revision != rev {
			continue
		}
		hashes[m.ID] = peer.Hash
		votes[peer.Hash]++
	}
	// The hash most members hold is taken as right; on a tie the leader's
	// (two members disagreeing cannot say more, and etcd blames the peer).
	good, best := h, votes[h]
	for hv, n := range votes {
		if n > best {
			good, best = hv, n
		}
	}
	for id, hv := range hashes {
		if hv == good {
			continue
		}
		s.lg.Error("data corruption detected: this member's key history differs from the majority's; raising CORRUPT",
			"member", membership.IDString(id), "revision", rev, "hash", hv, "majority-hash", good)
		ctx, cancel := context.WithTimeout(context.Background(), s.reqTimout)
		_, err := s.Alarm(ctx, &pb.AlarmRequest{Action: pb.AlarmRequest_ACTIVATE, MemberID: id, Alarm: pb.AlarmType_CORRUPT})
		cancel()
		if err != nil {
			s.lg.Warn("raising the CORRUPT alarm failed; will retry at the next check", "member", membership.IDString(id), "error", err.Error())
		}
	}
	if len(hashes) > 1 && len(votes) == 1 {
		s.lg.Debug("periodic corruption check passed", "revision", rev, "members", len(hashes))
	}
}

// checkCorrupt refuses what etcd's corrupt applier refuses while a CORRUPT
// alarm is active: every change to the keyspace and to leases. Reads,
// alarms and membership still work, so the operator can see and repair.
func (s *Server) checkCorrupt(r *pb.InternalRaftRequest) error {
	if r.Put == nil && r.DeleteRange == nil && r.Compaction == nil && r.LeaseGrant == nil && r.LeaseRevoke == nil &&
		(r.Txn == nil || !txnChanges(r.Txn)) {
		return nil
	}
	if s.alarms.Has(pb.AlarmType_CORRUPT) {
		return cerr.ErrCorrupt
	}
	return nil
}

// txnChanges reports whether a txn may put or delete anything (either
// branch, nested txns included); read-only txns are reads.
func txnChanges(t *pb.TxnRequest) bool {
	for _, ops := range [][]*pb.RequestOp{t.Success, t.Failure} {
		for _, op := range ops {
			switch x := op.Request.(type) {
			case *pb.RequestOp_RequestPut, *pb.RequestOp_RequestDeleteRange:
				return true
			case *pb.RequestOp_RequestTxn:
				if txnChanges(x.RequestTxn) {
					return true
				}
			}
		}
	}
	return false
}
