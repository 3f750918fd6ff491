// Package api adapts the etcd v3 gRPC services (and the HTTP health, version
// and metrics endpoints) onto a member. Handlers are thin: validate, call,
// translate the error once (errors.go), fill the header.
package api

import (
	"context"
	"log/slog"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/cadrekv/cadre/internal/membership"
)

// Member is what the API needs from a running member. The server
// implements it; the API never reaches past it.
type Member interface {
	Range(ctx context.Context, r *pb.RangeRequest) (*pb.RangeResponse, error)
	Put(ctx context.Context, r *pb.PutRequest) (*pb.PutResponse, error)
	DeleteRange(ctx context.Context, r *pb.DeleteRangeRequest) (*pb.DeleteRangeResponse, error)
	Txn(ctx context.Context, r *pb.TxnRequest) (*pb.TxnResponse, error)
	Compact(ctx context.Context, r *pb.CompactionRequest) (*pb.CompactionResponse, error)
	Status(ctx context.Context) (*pb.StatusResponse, error)
	MemberList(ctx context.Context, linearizable bool) ([]*pb.Member, error)
	Header(rev int64) *pb.ResponseHeader
	Leader() uint64
	IsLearner() bool
	IsReady() bool // published through raft: serves everything

	ChangeMembers(ctx context.Context, c membership.Change, dryRun bool) (*membership.ChangeResult, error)
	MembersProgress(ctx context.Context) (*membership.Progress, error)
	MoveLeader(ctx context.Context, target uint64) error

	LeaseGrant(ctx context.Context, r *pb.LeaseGrantRequest) (*pb.LeaseGrantResponse, error)
	LeaseRevoke(ctx context.Context, id int64) (*pb.LeaseRevokeResponse, error)
	LeaseRenew(ctx context.Context, id int64) (int64, error)
	LeaseTimeToLive(ctx context.Context, id int64, keys bool) (*pb.LeaseTimeToLiveResponse, error)
	LeaseLeases(ctx context.Context) (*pb.LeaseLeasesResponse, error)

	Alarm(ctx context.Context, r *pb.AlarmRequest) (*pb.AlarmResponse, error)
	Defragment(ctx context.Context) error
	HashKV(ctx context.Context, rev int64) (*pb.HashKVResponse, error)
	Hash(ctx context.Context) (*pb.HashResponse, error)

	AuthMember
}

// Limits are the request limits enforced before anything is proposed.
type Limits struct {
	MaxTxnOps uint
}

// Register installs the etcd v3 services of m on g.
func Register(g *grpc.Server, m Member, lim Limits, lg *slog.Logger) {
	pb.RegisterKVServer(g, &kvServer{m: m, lim: lim})
	pb.RegisterMaintenanceServer(g, &maintenanceServer{m: m})
	pb.RegisterClusterServer(g, &clusterServer{m: m})
	pb.RegisterLeaseServer(g, &leaseServer{m: m})
	pb.RegisterAuthServer(g, &authServer{m: m})
	hs := health.NewServer()
	hs.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
	healthpb.RegisterHealthServer(g, hs)
}
