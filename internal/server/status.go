package server

import (
	"context"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/membershippb"

	"github.com/cadrekv/cadre/internal/join"
	"github.com/cadrekv/cadre/internal/membership"
)

// Status describes this member for Maintenance.Status. It answers without
// a leader, so operators can inspect a cluster that lost its quorum.
func (s *Server) Status(ctx context.Context) (*pb.StatusResponse, error) {
	st := s.node.Status()
	applied, _ := s.store.Applied()
	// etcd reports the committed index as the raft index.
	lastIndex := st.HardState.GetCommit()
	resp := &pb.StatusResponse{
		Version:          Version,
		DbSize:           s.store.Size(),
		DbSizeInUse:      s.store.SizeInUse(),
		Leader:           st.Lead,
		RaftIndex:        lastIndex,
		RaftTerm:         st.HardState.GetTerm(),
		RaftAppliedIndex: applied,
		IsLearner:        s.isLearner(),
		StorageVersion:   "3.6.0",
		DbSizeQuota:      s.quota(),
	}
	if resp.Leader == 0 {
		resp.Errors = append(resp.Errors, "etcdserver: no leader")
	}
	return resp, nil
}

func (s *Server) quota() int64 {
	if s.cfg.QuotaBackendBytes > 0 {
		return s.cfg.QuotaBackendBytes
	}
	return 2 << 30
}

// IsLearner reports whether this member is a learner.
func (s *Server) IsLearner() bool { return s.isLearner() }

func (s *Server) isLearner() bool { return s.cluster.IsLearner(s.id) }

// MemberList returns the members; a linearizable list first waits for a
// ReadIndex barrier so it reflects every committed change.
func (s *Server) MemberList(ctx context.Context, linearizable bool) ([]*pb.Member, error) {
	if linearizable {
		if err := s.linearizableBarrier(ctx); err != nil {
			return nil, err
		}
	}
	ms := s.cluster.Members()
	out := make([]*pb.Member, 0, len(ms))
	for _, m := range ms {
		out = append(out, &pb.Member{ID: m.ID, Name: m.Name, PeerURLs: m.PeerURLs, ClientURLs: m.ClientURLs, IsLearner: m.IsLearner})
	}
	return out, nil
}

// Header returns the response header fields that describe this member.
func (s *Server) Header(rev int64) *pb.ResponseHeader {
	if rev == 0 {
		rev, _ = s.store.Rev()
	}
	return &pb.ResponseHeader{ClusterId: s.ClusterID(), MemberId: s.id, Revision: rev, RaftTerm: s.node.Term()}
}

// publish proposes this member's name and client URLs until it commits,
// then marks the member ready: clients are served only by a member the
// cluster knows under its current client URLs.
func (s *Server) publish() {
	attrs := &membershippb.ClusterMemberAttrSetRequest{
		Member_ID: s.id,
		MemberAttributes: &membershippb.Attributes{
			Name:       s.cfg.Name,
			ClientUrls: urlStrings(s.cfg.AdvertiseClientURLs),
		},
	}
	// A member that has just joined with --join starts as a learner the
	// leader promotes by itself (it may not have applied its own add yet).
	awaitsPromotion := s.joined
	for attempt := 1; ; attempt++ {
		ctx, cancel := context.WithTimeout(context.Background(), s.reqTimout)
		_, err := s.propose(ctx, &pb.InternalRaftRequest{ClusterMemberAttrSet: attrs})
		cancel()
		if err == nil {
			s.lg.Info("published local member to cluster through raft", "name", s.cfg.Name,
				"client-urls", attrs.MemberAttributes.ClientUrls, "member-id", membership.IDString(s.id))
			if awaitsPromotion {
				join.CrashPoint("learner") // started, not yet (or only just) promoted
			}
			// Serve only data that agrees with the peers'.
			if s.cfg.InitialCorruptCheck {
				if err := s.checkCorruption(); err != nil {
					s.fatal(err)
					return
				}
			}
			close(s.readyc)
			go s.recordIncarnation()
			return
		}
		if s.cluster.IsRemoved(s.id) {
			s.removedFromCluster()
			return
		}
		s.lg.Warn("failed to publish local member to cluster through raft; retrying", "attempt", attempt, "error", err.Error())
		select {
		case <-s.stopping:
			return
		case <-time.After(s.cfg.HeartbeatInterval):
		}
	}
}
