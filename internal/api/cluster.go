package api

import (
	"context"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"

	"github.com/cadrekv/cadre/internal/membership"
)

type clusterServer struct {
	pb.UnimplementedClusterServer
	m Member
}

// header is etcd's Cluster response header: cluster, member and term, but
// no revision (membership is not part of the key space).
func (s *clusterServer) header() *pb.ResponseHeader {
	h := s.m.Header(0)
	h.Revision = 0
	return h
}

func (s *clusterServer) MemberList(ctx context.Context, r *pb.MemberListRequest) (*pb.MemberListResponse, error) {
	ms, err := s.m.MemberList(ctx, r.Linearizable)
	if err != nil {
		return nil, togRPC(err)
	}
	return &pb.MemberListResponse{Header: s.header(), Members: ms}, nil
}

func (s *clusterServer) MemberAdd(ctx context.Context, r *pb.MemberAddRequest) (*pb.MemberAddResponse, error) {
	res, err := s.m.ChangeMembers(ctx, membership.Change{Kind: membership.ChangeAdd, PeerURLs: r.PeerURLs, IsLearner: r.IsLearner, By: callerOf(ctx, s.m)}, false)
	if err != nil {
		return nil, togRPC(err)
	}
	return &pb.MemberAddResponse{Header: s.header(), Member: toPB(res.Member), Members: toPBs(res.Members)}, nil
}

func (s *clusterServer) MemberRemove(ctx context.Context, r *pb.MemberRemoveRequest) (*pb.MemberRemoveResponse, error) {
	res, err := s.m.ChangeMembers(ctx, membership.Change{Kind: membership.ChangeRemove, ID: r.ID, By: callerOf(ctx, s.m)}, false)
	if err != nil {
		return nil, togRPC(err)
	}
	return &pb.MemberRemoveResponse{Header: s.header(), Members: toPBs(res.Members)}, nil
}

func (s *clusterServer) MemberUpdate(ctx context.Context, r *pb.MemberUpdateRequest) (*pb.MemberUpdateResponse, error) {
	res, err := s.m.ChangeMembers(ctx, membership.Change{Kind: membership.ChangeUpdate, ID: r.ID, PeerURLs: r.PeerURLs, By: callerOf(ctx, s.m)}, false)
	if err != nil {
		return nil, togRPC(err)
	}
	return &pb.MemberUpdateResponse{Header: s.header(), Members: toPBs(res.Members)}, nil
}

func (s *clusterServer) MemberPromote(ctx context.Context, r *pb.MemberPromoteRequest) (*pb.MemberPromoteResponse, error) {
	res, err := s.m.ChangeMembers(ctx, membership.Change{Kind: membership.ChangePromote, ID: r.ID, By: callerOf(ctx, s.m)}, false)
	if err != nil {
		return nil, togRPC(err)
	}
	return &pb.MemberPromoteResponse{Header: s.header(), Members: toPBs(res.Members)}, nil
}

func toPB(m *membership.Member) *pb.Member {
	if m == nil {
		return nil
	}
	return &pb.Member{ID: m.ID, Name: m.Name, PeerURLs: m.PeerURLs, ClientURLs: m.ClientURLs, IsLearner: m.IsLearner}
}

func toPBs(ms []*membership.Member) []*pb.Member {
	out := make([]*pb.Member, 0, len(ms))
	for _, m := range ms {
		out = append(out, toPB(m))
	}
	return out
}
