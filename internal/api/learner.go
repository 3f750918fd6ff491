package api

import (
	"context"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"google.golang.org/grpc"
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

// UnaryInterceptor refuses requests a learner must not serve.
func UnaryInterceptor(m Member) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		if m.IsLearner() && !supportedByLearner(req) {
			return nil, rpctypes.ErrGRPCNotSupportedForLearner
		}
		return handler(ctx, req)
	}
}

// StreamInterceptor refuses streams (watch, lease keep-alive) on a learner.
func StreamInterceptor(m Member) grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		if m.IsLearner() && info.FullMethod != "/grpc.health.v1.Health/Watch" {
			return rpctypes.ErrGRPCNotSupportedForLearner
		}
		return handler(srv, ss)
	}
}
