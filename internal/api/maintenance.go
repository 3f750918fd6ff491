package api

import (
	"context"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
)

type maintenanceServer struct {
	pb.UnimplementedMaintenanceServer
	m Member
}

func (s *maintenanceServer) Status(ctx context.Context, _ *pb.StatusRequest) (*pb.StatusResponse, error) {
	resp, err := s.m.Status(ctx)
	if err != nil {
		return nil, togRPC(err)
	}
	resp.Header = s.m.Header(0)
	if resp.DowngradeInfo == nil {
		resp.DowngradeInfo = &pb.DowngradeInfo{} // etcd always sets it: {} in JSON
	}
	return resp, nil
}

// Alarm lists, raises or clears alarms; etcdctl's endpoint health asks
// for the list after its health read.
func (s *maintenanceServer) Alarm(ctx context.Context, r *pb.AlarmRequest) (*pb.AlarmResponse, error) {
	resp, err := s.m.Alarm(ctx, r)
	if err != nil {
		return nil, togRPC(err)
	}
	resp.Header = s.m.Header(0)
	return resp, nil
}

// Defragment rewrites this member's backend without its free pages. The
// response has no header, as etcd's ("{}" through the JSON gateway).
func (s *maintenanceServer) Defragment(ctx context.Context, _ *pb.DefragmentRequest) (*pb.DefragmentResponse, error) {
	if err := s.m.Defragment(ctx); err != nil {
		return nil, togRPC(err)
	}
	return &pb.DefragmentResponse{}, nil
}

// MoveLeader must be sent to the leader, as etcd's; like etcd's, its
// response has no header.
func (s *maintenanceServer) MoveLeader(ctx context.Context, r *pb.MoveLeaderRequest) (*pb.MoveLeaderResponse, error) {
	if err := s.m.MoveLeader(ctx, r.TargetID); err != nil {
		return nil, togRPC(err)
	}
	return &pb.MoveLeaderResponse{}, nil
}

// HashKV hashes the member's key history, to compare members. A history
// never compacted reports compact revision -1, as etcd's does (the store
// says 0).
func (s *maintenanceServer) HashKV(ctx context.Context, r *pb.HashKVRequest) (*pb.HashKVResponse, error) {
	resp, err := s.m.HashKV(ctx, r.Revision)
	if err != nil {
		return nil, togRPC(err)
	}
	if resp.CompactRevision == 0 {
		resp.CompactRevision = -1
	}
	return resp, nil
}

// Hash hashes the member's whole backend.
func (s *maintenanceServer) Hash(ctx context.Context, _ *pb.HashRequest) (*pb.HashResponse, error) {
	resp, err := s.m.Hash(ctx)
	if err != nil {
		return nil, togRPC(err)
	}
	return resp, nil
}
