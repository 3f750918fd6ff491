package api

import (
	"context"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
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
	return resp, nil
}

// Alarm answers GET with the active alarms (none are raised yet: quota and
// corruption alarms come with the maintenance work). etcdctl's endpoint
// health asks for them after its health read.
func (s *maintenanceServer) Alarm(ctx context.Context, r *pb.AlarmRequest) (*pb.AlarmResponse, error) {
	if r.Action != pb.AlarmRequest_GET {
		return nil, status.Error(codes.Unimplemented, "cadre: activating or deactivating alarms is not supported yet")
	}
	return &pb.AlarmResponse{Header: s.m.Header(0)}, nil
}

// MoveLeader must be sent to the leader, as etcd's.
func (s *maintenanceServer) MoveLeader(ctx context.Context, r *pb.MoveLeaderRequest) (*pb.MoveLeaderResponse, error) {
	if err := s.m.MoveLeader(ctx, r.TargetID); err != nil {
		return nil, togRPC(err)
	}
	return &pb.MoveLeaderResponse{Header: s.m.Header(0)}, nil
}
