package api

import (
	"context"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// A learner replicates but does not vote, and its data may lag: it serves
// only Status and serializable reads, as in etcd. One interceptor keeps the
// rule in one place for every service.

func supportedByLearner(req any) bool {
	switch r := req.(type) {
	case *pb.StatusRequest:
		return true
	case *pb.RangeRequest:
		return r.Serializable
	}
	return false
}

// errNotReady answers requests that need a member that has published
// itself through raft; Unavailable makes clients try another endpoint.
var errNotReady = status.Error(codes.Unavailable, "etcdserver: member not ready: it has not yet joined the cluster through raft (is a quorum of members running?); only Status and serializable reads are served until then")

// supportedBeforeReady is what a member serves before it has published
// itself: enough to inspect a member that lost its quorum.
func supportedBeforeReady(req any) bool {
	switch r := req.(type) {
	case *pb.StatusRequest:
		return true
	case *pb.RangeRequest:
		return r.Serializable
	case *pb.MemberListRequest:
		return !r.Linearizable
	}
	return false
}

// UnaryInterceptor refuses requests a learner must not serve, those that
// need a ready member before it is ready, and those the caller may not
// make when auth is on (authz.go).
func UnaryInterceptor(m Member) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		if !m.IsReady() && !supportedBeforeReady(req) {
			return nil, errNotReady
		}
		if m.IsLearner() && !supportedByLearner(req) {
			return nil, rpctypes.ErrGRPCNotSupportedForLearner
		}
		if err := authUnary(m, ctx, info.FullMethod, req); err != nil {
			return nil, err
		}
		return handler(ctx, req)
	}
}

// StreamInterceptor refuses streams (watch, lease keep-alive) on a learner.
func StreamInterceptor(m Member) grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		// A snapshot is served before ready: it is how the data of a
		// survivor without quorum is saved for a restore.
		if info.FullMethod != "/grpc.health.v1.Health/Watch" && info.FullMethod != "/etcdserverpb.Maintenance/Snapshot" && !m.IsReady() {
			return errNotReady
		}
		if m.IsLearner() && info.FullMethod != "/grpc.health.v1.Health/Watch" {
			return rpctypes.ErrGRPCNotSupportedForLearner
		}
		ss, err := authStream(m, ss, info.FullMethod)
		if err != nil {
			return err
		}
		return handler(srv, ss)
	}
}
