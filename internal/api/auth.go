package api

import (
	"context"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/cadrekv/cadre/internal/auth"
)

// AuthMember is what the Auth service and the access checks need.
type AuthMember interface {
	AuthStore() *auth.Store
	Authenticate(ctx context.Context, name, password string) (string, error)
	ResolveToken(token string) (string, error)
	AuthChange(ctx context.Context, r *pb.InternalRaftRequest) (proto.Message, error)
	LeaseKeys(id int64) ([][]byte, error)
}

// authServer is the etcd v3 Auth service. Who may call what is decided
// by the interceptor (authz.go), not here.
type authServer struct {
	pb.UnimplementedAuthServer
	m Member
}

func (s *authServer) change(ctx context.Context, r *pb.InternalRaftRequest) (proto.Message, error) {
	resp, err := s.m.AuthChange(ctx, r)
	return resp, togRPC(err)
}

// withHeader fills the response header every Auth response carries.
func withHeader[T proto.Message](s *authServer, resp proto.Message, err error) (T, error) {
	var zero T
	if err != nil {
		return zero, err
	}
	r := resp.ProtoReflect()
	if fd := r.Descriptor().Fields().ByName("header"); fd != nil {
		r.Set(fd, protoreflect.ValueOfMessage(s.m.Header(0).ProtoReflect()))
	}
	return resp.(T), nil
}

func (s *authServer) AuthEnable(ctx context.Context, r *pb.AuthEnableRequest) (*pb.AuthEnableResponse, error) {
	resp, err := s.change(ctx, &pb.InternalRaftRequest{AuthEnable: r})
	return withHeader[*pb.AuthEnableResponse](s, resp, err)
}

func (s *authServer) AuthDisable(ctx context.Context, r *pb.AuthDisableRequest) (*pb.AuthDisableResponse, error) {
	resp, err := s.change(ctx, &pb.InternalRaftRequest{AuthDisable: r})
	return withHeader[*pb.AuthDisableResponse](s, resp, err)
}

func (s *authServer) AuthStatus(ctx context.Context, _ *pb.AuthStatusRequest) (*pb.AuthStatusResponse, error) {
	resp := s.m.AuthStore().Status()
	resp.Header = s.m.Header(0)
	return resp, nil
}

func (s *authServer) Authenticate(ctx context.Context, r *pb.AuthenticateRequest) (*pb.AuthenticateResponse, error) {
	token, err := s.m.Authenticate(ctx, r.Name, r.Password)
	if err != nil {
		return nil, togRPC(err)
	}
	return &pb.AuthenticateResponse{Header: s.m.Header(0), Token: token}, nil
}

func (s *authServer) UserAdd(ctx context.Context, r *pb.AuthUserAddRequest) (*pb.AuthUserAddResponse, error) {
	resp, err := s.change(ctx, &pb.InternalRaftRequest{AuthUserAdd: r})
	return withHeader[*pb.AuthUserAddResponse](s, resp, err)
}

func (s *authServer) UserGet(ctx context.Context, r *pb.AuthUserGetRequest) (*pb.AuthUserGetResponse, error) {
	resp, err := s.m.AuthStore().UserGet(r.Name)
	if err != nil {
		return nil, togRPC(err)
	}
	resp.Header = s.m.Header(0)
	return resp, nil
}

func (s *authServer) UserList(ctx context.Context, _ *pb.AuthUserListRequest) (*pb.AuthUserListResponse, error) {
	resp := s.m.AuthStore().UserList()
	resp.Header = s.m.Header(0)
	return resp, nil
}

func (s *authServer) UserDelete(ctx context.Context, r *pb.AuthUserDeleteRequest) (*pb.AuthUserDeleteResponse, error) {
	resp, err := s.change(ctx, &pb.InternalRaftRequest{AuthUserDelete: r})
	return withHeader[*pb.AuthUserDeleteResponse](s, resp, err)
}

func (s *authServer) UserChangePassword(ctx context.Context, r *pb.AuthUserChangePasswordRequest) (*pb.AuthUserChangePasswordResponse, error) {
	resp, err := s.change(ctx, &pb.InternalRaftRequest{AuthUserChangePassword: r})
	return withHeader[*pb.AuthUserChangePasswordResponse](s, resp, err)
}

func (s *authServer) UserGrantRole(ctx context.Context, r *pb.AuthUserGrantRoleRequest) (*pb.AuthUserGrantRoleResponse, error) {
	resp, err := s.change(ctx, &pb.InternalRaftRequest{AuthUserGrantRole: r})
	return withHeader[*pb.AuthUserGrantRoleResponse](s, resp, err)
}

func (s *authServer) UserRevokeRole(ctx context.Context, r *pb.AuthUserRevokeRoleRequest) (*pb.AuthUserRevokeRoleResponse, error) {
	resp, err := s.change(ctx, &pb.InternalRaftRequest{AuthUserRevokeRole: r})
	return withHeader[*pb.AuthUserRevokeRoleResponse](s, resp, err)
}

func (s *authServer) RoleAdd(ctx context.Context, r *pb.AuthRoleAddRequest) (*pb.AuthRoleAddResponse, error) {
	resp, err := s.change(ctx, &pb.InternalRaftRequest{AuthRoleAdd: r})
	return withHeader[*pb.AuthRoleAddResponse](s, resp, err)
}

func (s *authServer) RoleGet(ctx context.Context, r *pb.AuthRoleGetRequest) (*pb.AuthRoleGetResponse, error) {
	resp, err := s.m.AuthStore().RoleGet(r.Role)
	if err != nil {
		return nil, togRPC(err)
	}
	resp.Header = s.m.Header(0)
	return resp, nil
}

func (s *authServer) RoleList(ctx context.Context, _ *pb.AuthRoleListRequest) (*pb.AuthRoleListResponse, error) {
	resp := s.m.AuthStore().RoleList()
	resp.Header = s.m.Header(0)
	return resp, nil
}

func (s *authServer) RoleDelete(ctx context.Context, r *pb.AuthRoleDeleteRequest) (*pb.AuthRoleDeleteResponse, error) {
	resp, err := s.change(ctx, &pb.InternalRaftRequest{AuthRoleDelete: r})
	return withHeader[*pb.AuthRoleDeleteResponse](s, resp, err)
}

func (s *authServer) RoleGrantPermission(ctx context.Context, r *pb.AuthRoleGrantPermissionRequest) (*pb.AuthRoleGrantPermissionResponse, error) {
	resp, err := s.change(ctx, &pb.InternalRaftRequest{AuthRoleGrantPermission: r})
	return withHeader[*pb.AuthRoleGrantPermissionResponse](s, resp, err)
}

func (s *authServer) RoleRevokePermission(ctx context.Context, r *pb.AuthRoleRevokePermissionRequest) (*pb.AuthRoleRevokePermissionResponse, error) {
	resp, err := s.change(ctx, &pb.InternalRaftRequest{AuthRoleRevokePermission: r})
	return withHeader[*pb.AuthRoleRevokePermissionResponse](s, resp, err)
}
