package api

import (
	"context"
	"errors"
	"io"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
)

type leaseServer struct {
	pb.UnimplementedLeaseServer
	m Member
}

func (s *leaseServer) LeaseGrant(ctx context.Context, r *pb.LeaseGrantRequest) (*pb.LeaseGrantResponse, error) {
	resp, err := s.m.LeaseGrant(ctx, r)
	if err != nil {
		return nil, togRPC(err)
	}
	resp.Header = s.m.Header(0)
	return resp, nil
}

func (s *leaseServer) LeaseRevoke(ctx context.Context, r *pb.LeaseRevokeRequest) (*pb.LeaseRevokeResponse, error) {
	resp, err := s.m.LeaseRevoke(ctx, r.ID)
	if err != nil {
		return nil, togRPC(err)
	}
	resp.Header = s.m.Header(0)
	return resp, nil
}

func (s *leaseServer) LeaseTimeToLive(ctx context.Context, r *pb.LeaseTimeToLiveRequest) (*pb.LeaseTimeToLiveResponse, error) {
	resp, err := s.m.LeaseTimeToLive(ctx, r.ID, r.Keys)
	if err != nil {
		return nil, togRPC(err)
	}
	resp.Header = s.m.Header(0)
	return resp, nil
}

func (s *leaseServer) LeaseLeases(ctx context.Context, r *pb.LeaseLeasesRequest) (*pb.LeaseLeasesResponse, error) {
	resp, err := s.m.LeaseLeases(ctx)
	if err != nil {
		return nil, togRPC(err)
	}
	resp.Header = s.m.Header(0)
	return resp, nil
}

// LeaseKeepAlive answers each keep-alive in order. A lease that does not
// exist gets TTL 0 (etcd's answer), not a stream error, so the client can
// tell its lease is gone.
func (s *leaseServer) LeaseKeepAlive(stream pb.Lease_LeaseKeepAliveServer) error {
	for {
		req, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		ttl, err := s.m.LeaseRenew(stream.Context(), req.ID)
		if err != nil && !isLeaseNotFound(err) {
			return togRPC(err)
		}
		if err != nil {
			ttl = 0
		}
		if err := stream.Send(&pb.LeaseKeepAliveResponse{Header: s.m.Header(0), ID: req.ID, TTL: ttl}); err != nil {
			return err
		}
	}
}
