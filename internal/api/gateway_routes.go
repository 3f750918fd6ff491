package api

import (
	"context"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

// gwRoute is one gateway path: the gRPC method it stands for (what the
// interceptor judges), and how to call it.
type gwRoute struct {
	method string
	newReq func() proto.Message // nil for bidirectional streams

	unary func(ctx context.Context, req proto.Message) (proto.Message, error)
	// stream serves a streaming method; req is the decoded body of a
	// server-streaming call, nil for a bidirectional one.
	stream func(req proto.Message, ss grpc.ServerStream) error
}

// unaryRoute adapts a unary service method.
func unaryRoute[Req any, PReq interface {
	*Req
	proto.Message
}, Resp proto.Message](method string, f func(context.Context, PReq) (Resp, error)) gwRoute {
	return gwRoute{
		method: method,
		newReq: func() proto.Message { return PReq(new(Req)) },
		unary: func(ctx context.Context, r proto.Message) (proto.Message, error) {
			return f(ctx, r.(PReq))
		},
	}
}

// gwRoutes are etcd v3.7.3's gateway paths (api/etcdserverpb/gw), all
// POST, served by the same service values the gRPC server registers.
func gwRoutes(m Member, lim Limits, maxRequestBytes uint) map[string]gwRoute {
	kv := &kvServer{m: m, lim: lim}
	ls := &leaseServer{m: m}
	cs := &clusterServer{m: m}
	ms := &maintenanceServer{m: m}
	as := &authServer{m: m}

	leaseRevoke := unaryRoute("/etcdserverpb.Lease/LeaseRevoke", ls.LeaseRevoke)
	leaseTTL := unaryRoute("/etcdserverpb.Lease/LeaseTimeToLive", ls.LeaseTimeToLive)
	leaseLeases := unaryRoute("/etcdserverpb.Lease/LeaseLeases", ls.LeaseLeases)

	return map[string]gwRoute{
		"/v3/kv/range":       unaryRoute("/etcdserverpb.KV/Range", kv.Range),
		"/v3/kv/put":         unaryRoute("/etcdserverpb.KV/Put", kv.Put),
		"/v3/kv/deleterange": unaryRoute("/etcdserverpb.KV/DeleteRange", kv.DeleteRange),
		"/v3/kv/txn":         unaryRoute("/etcdserverpb.KV/Txn", kv.Txn),
		"/v3/kv/compaction":  unaryRoute("/etcdserverpb.KV/Compact", kv.Compact),

		"/v3/watch": {method: "/etcdserverpb.Watch/Watch", stream: watchStream(m, maxRequestBytes)},

		"/v3/lease/grant":         unaryRoute("/etcdserverpb.Lease/LeaseGrant", ls.LeaseGrant),
		"/v3/lease/revoke":        leaseRevoke,
		"/v3/kv/lease/revoke":     leaseRevoke,
		"/v3/lease/timetolive":    leaseTTL,
		"/v3/kv/lease/timetolive": leaseTTL,
		"/v3/lease/leases":        leaseLeases,
		"/v3/kv/lease/leases":     leaseLeases,
		"/v3/lease/keepalive": {method: "/etcdserverpb.Lease/LeaseKeepAlive", stream: func(_ proto.Message, ss grpc.ServerStream) error {
			return ls.LeaseKeepAlive(gwStream[pb.LeaseKeepAliveRequest, pb.LeaseKeepAliveResponse]{ss})
		}},

		"/v3/cluster/member/add":     unaryRoute("/etcdserverpb.Cluster/MemberAdd", cs.MemberAdd),
		"/v3/cluster/member/remove":  unaryRoute("/etcdserverpb.Cluster/MemberRemove", cs.MemberRemove),
		"/v3/cluster/member/update":  unaryRoute("/etcdserverpb.Cluster/MemberUpdate", cs.MemberUpdate),
		"/v3/cluster/member/list":    unaryRoute("/etcdserverpb.Cluster/MemberList", cs.MemberList),
		"/v3/cluster/member/promote": unaryRoute("/etcdserverpb.Cluster/MemberPromote", cs.MemberPromote),

		"/v3/maintenance/alarm":      unaryRoute("/etcdserverpb.Maintenance/Alarm", ms.Alarm),
		"/v3/maintenance/status":     unaryRoute("/etcdserverpb.Maintenance/Status", ms.Status),
		"/v3/maintenance/defragment": unaryRoute("/etcdserverpb.Maintenance/Defragment", ms.Defragment),
		"/v3/maintenance/hash":       unaryRoute("/etcdserverpb.Maintenance/Hash", ms.Hash),
		"/v3/maintenance/hashkv":     unaryRoute("/etcdserverpb.Maintenance/HashKV", ms.HashKV),
		"/v3/maintenance/snapshot": {
			method: "/etcdserverpb.Maintenance/Snapshot",
			newReq: func() proto.Message { return &pb.SnapshotRequest{} },
			stream: func(req proto.Message, ss grpc.ServerStream) error {
				return ms.Snapshot(req.(*pb.SnapshotRequest), gwStream[pb.SnapshotRequest, pb.SnapshotResponse]{ss})
			},
		},
		"/v3/maintenance/transfer-leadership": unaryRoute("/etcdserverpb.Maintenance/MoveLeader", ms.MoveLeader),
		"/v3/maintenance/downgrade":           unaryRoute("/etcdserverpb.Maintenance/Downgrade", ms.Downgrade),

		"/v3/auth/enable":        unaryRoute("/etcdserverpb.Auth/AuthEnable", as.AuthEnable),
		"/v3/auth/disable":       unaryRoute("/etcdserverpb.Auth/AuthDisable", as.AuthDisable),
		"/v3/auth/status":        unaryRoute("/etcdserverpb.Auth/AuthStatus", as.AuthStatus),
		"/v3/auth/authenticate":  unaryRoute("/etcdserverpb.Auth/Authenticate", as.Authenticate),
		"/v3/auth/user/add":      unaryRoute("/etcdserverpb.Auth/UserAdd", as.UserAdd),
		"/v3/auth/user/get":      unaryRoute("/etcdserverpb.Auth/UserGet", as.UserGet),
		"/v3/auth/user/list":     unaryRoute("/etcdserverpb.Auth/UserList", as.UserList),
		"/v3/auth/user/delete":   unaryRoute("/etcdserverpb.Auth/UserDelete", as.UserDelete),
		"/v3/auth/user/changepw": unaryRoute("/etcdserverpb.Auth/UserChangePassword", as.UserChangePassword),
		"/v3/auth/user/grant":    unaryRoute("/etcdserverpb.Auth/UserGrantRole", as.UserGrantRole),
		"/v3/auth/user/revoke":   unaryRoute("/etcdserverpb.Auth/UserRevokeRole", as.UserRevokeRole),
		"/v3/auth/role/add":      unaryRoute("/etcdserverpb.Auth/RoleAdd", as.RoleAdd),
		"/v3/auth/role/get":      unaryRoute("/etcdserverpb.Auth/RoleGet", as.RoleGet),
		"/v3/auth/role/list":     unaryRoute("/etcdserverpb.Auth/RoleList", as.RoleList),
		"/v3/auth/role/delete":   unaryRoute("/etcdserverpb.Auth/RoleDelete", as.RoleDelete),
		"/v3/auth/role/grant":    unaryRoute("/etcdserverpb.Auth/RoleGrantPermission", as.RoleGrantPermission),
		"/v3/auth/role/revoke":   unaryRoute("/etcdserverpb.Auth/RoleRevokePermission", as.RoleRevokePermission),
	}
}

// watchStream serves /v3/watch with the Watch service, when the member
// has one (every server does; the check keeps Member small).
func watchStream(m Member, maxRequestBytes uint) func(proto.Message, grpc.ServerStream) error {
	b, ok := m.(WatchBackend)
	if !ok {
		return func(proto.Message, grpc.ServerStream) error {
			return status.Error(codes.Unimplemented, "etcdserver: watch is not supported by this member")
		}
	}
	if maxRequestBytes == 0 {
		maxRequestBytes = defaultMaxWatchResponseBytes
	}
	ws := &watchServer{b: b, maxBytes: maxRequestBytes}
	return func(_ proto.Message, ss grpc.ServerStream) error {
		return ws.Watch(gwStream[pb.WatchRequest, pb.WatchResponse]{ss})
	}
}
