// Package auth is the etcd v3 authentication and role-based access model:
// users (bcrypt password hashes), roles with key-range permissions, the
// root user and role, the enabled flag and the auth revision. Changes are
// applied from raft (Apply), persisted in the backend's meta bucket in the
// same transaction as the applied index, and checked on every request
// (Check*). It knows nothing of gRPC or raft.
package auth

import (
	"errors"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"

	"go.etcd.io/etcd/api/v3/authpb"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"golang.org/x/crypto/bcrypt"
	"google.golang.org/protobuf/proto"

	"github.com/cadrekv/cadre/internal/storage/schema"
)

// Errors, mapped once to etcd's rpctypes errors by the API layer.
var (
	ErrRootUserNotExist     = errors.New("auth: root user does not exist")
	ErrRootRoleNotExist     = errors.New("auth: root user does not have root role")
	ErrUserAlreadyExist     = errors.New("auth: user already exists")
	ErrUserEmpty            = errors.New("auth: user name is empty")
	ErrUserNotFound         = errors.New("auth: user not found")
	ErrRoleAlreadyExist     = errors.New("auth: role already exists")
	ErrRoleNotFound         = errors.New("auth: role not found")
	ErrRoleEmpty            = errors.New("auth: role name is empty")
	ErrPermissionNotGiven   = errors.New("auth: permission not given")
	ErrPermissionDenied     = errors.New("auth: permission denied")
	ErrRoleNotGranted       = errors.New("auth: role is not granted to the user")
	ErrAuthFailed           = errors.New("auth: authentication failed, invalid user ID or password")
	ErrAuthNotEnabled       = errors.New("auth: authentication is not enabled")
	ErrInvalidAuthToken     = errors.New("auth: invalid auth token")
	ErrInvalidAuthMgmt      = errors.New("auth: invalid auth management")
	ErrAuthOldRevision      = errors.New("auth: revision in header is old")
	ErrNoPasswordUser       = errors.New("auth: authentication failed, password was given for no password user")
	ErrRootRoleCannotChange = errors.New("auth: the root role cannot be deleted or revoked from root")
)

const (
	rootUser = "root"
	rootRole = "root"

	// Backend keys (owned by internal/storage/schema).
	metaPrefix   = schema.AuthPrefix
	metaEnabled  = schema.AuthEnabled
	metaRevision = schema.AuthRevision
	metaUser     = schema.AuthUser
	metaRole     = schema.AuthRole
)

// MetaRecords is the persisted form of an auth state whose users and roles
// are already encoded authpb.User / authpb.Role messages (etcd's own
// encoding, so an etcd backend's records carry over unchanged).
func MetaRecords(enabled bool, revision uint64, users, roles map[string][]byte) map[string][]byte {
	out := map[string][]byte{metaRevision: []byte(strconv.FormatUint(revision, 10))}
	out[metaEnabled] = []byte("0")
	if enabled {
		out[metaEnabled] = []byte("1")
	}
	for name, u := range users {
		out[metaUser+name] = u
	}
	for name, r := range roles {
		out[metaRole+name] = r
	}
	return out
}

// DecodeMetaRecords is MetaRecords' inverse: from the records under
// "auth/", the auth switch, revision, and each user's and role's encoded
// authpb message by name (for export to etcd's layout).
func DecodeMetaRecords(meta map[string][]byte) (enabled bool, revision uint64, users, roles map[string][]byte, err error) {
	users, roles = map[string][]byte{}, map[string][]byte{}
	for k, v := range meta {
		switch {
		case k == metaEnabled:
			enabled = string(v) == "1"
		case k == metaRevision:
			if revision, err = strconv.ParseUint(string(v), 10, 64); err != nil {
				return false, 0, nil, nil, fmt.Errorf("auth: unreadable revision %q", v)
			}
		case strings.HasPrefix(k, metaUser):
			users[strings.TrimPrefix(k, metaUser)] = v
		case strings.HasPrefix(k, metaRole):
			roles[strings.TrimPrefix(k, metaRole)] = v
		}
	}
	return enabled, revision, users, roles, nil
}

// Meta is where the store persists itself: the apply batch's meta bucket,
// written in the same transaction as the applied index.
type Meta interface {
	SetMeta(key string, value []byte)
}

// Store holds the auth state of one member.
type Store struct {
	mu       sync.RWMutex
	enabled  bool
	revision uint64
	users    map[string]*authpb.User
	roles    map[string]*authpb.Role
}

// New returns an empty store (auth disabled).
func New() *Store {
	return &Store{users: map[string]*authpb.User{}, roles: map[string]*authpb.Role{}}
}

// Load replaces the state with what the backend holds under "auth/".
func (s *Store) Load(meta map[string][]byte) error {
	users, roles := map[string]*authpb.User{}, map[string]*authpb.Role{}
	var enabled bool
	var rev uint64
	for k, v := range meta {
		switch {
		case k == metaEnabled:
			enabled = string(v) == "1"
		case k == metaRevision:
			n, err := strconv.ParseUint(string(v), 10, 64)
			if err != nil {
				return fmt.Errorf("auth: unreadable revision %q", v)
			}
			rev = n
		case strings.HasPrefix(k, metaUser):
			u := &authpb.User{}
			if err := proto.Unmarshal(v, u); err != nil {
				return fmt.Errorf("auth: unreadable user record %q: %w", k, err)
			}
			users[string(u.Name)] = u
		case strings.HasPrefix(k, metaRole):
			r := &authpb.Role{}
			if err := proto.Unmarshal(v, r); err != nil {
				return fmt.Errorf("auth: unreadable role record %q: %w", k, err)
			}
			roles[string(r.Name)] = r
		}
	}
	s.mu.Lock()
	s.enabled, s.revision, s.users, s.roles = enabled, rev, users, roles
	s.mu.Unlock()
	return nil
}

// MetaPrefix is the backend meta prefix Load reads.
func MetaPrefix() string { return metaPrefix }

// Enabled reports whether auth is on.
func (s *Store) Enabled() bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.enabled
}

// Revision is the auth revision: it grows with every change, and a token
// issued at an older revision is refused (ErrAuthOldRevision).
func (s *Store) Revision() uint64 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.revision
}

// HashPassword is done by the member that receives the request, before it
// is proposed, so the clear password never reaches the log.
func HashPassword(password string, cost int) (string, error) {
	if cost == 0 {
		cost = bcrypt.DefaultCost
	}
	h, err := bcrypt.GenerateFromPassword([]byte(password), cost)
	return string(h), err
}

// CheckPassword verifies a user's password; bcrypt is slow, so no lock is
// held while it runs.
func (s *Store) CheckPassword(name, password string) (uint64, error) {
	s.mu.RLock()
	u, ok := s.users[name]
	rev := s.revision
	s.mu.RUnlock()
	if !ok {
		return 0, ErrAuthFailed
	}
	if u.Options != nil && u.Options.NoPassword {
		return 0, ErrNoPasswordUser
	}
	if bcrypt.CompareHashAndPassword(u.Password, []byte(password)) != nil {
		return 0, ErrAuthFailed
	}
	return rev, nil
}

// UserExists reports whether name is a user (for certificate CN users).
func (s *Store) UserExists(name string) bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	_, ok := s.users[name]
	return ok
}

// ---- reads ----

func (s *Store) UserGet(name string) (*pb.AuthUserGetResponse, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	u, ok := s.users[name]
	if !ok {
		return nil, ErrUserNotFound
	}
	return &pb.AuthUserGetResponse{Roles: slices.Clone(u.Roles)}, nil
}

func (s *Store) UserList() *pb.AuthUserListResponse {
	s.mu.RLock()
	defer s.mu.RUnlock()
	names := make([]string, 0, len(s.users))
	for n := range s.users {
		names = append(names, n)
	}
	sort.Strings(names)
	return &pb.AuthUserListResponse{Users: names}
}

func (s *Store) RoleGet(name string) (*pb.AuthRoleGetResponse, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	r, ok := s.roles[name]
	if !ok {
		return nil, ErrRoleNotFound
	}
	perms := make([]*authpb.Permission, len(r.KeyPermission))
	for i, p := range r.KeyPermission {
		perms[i] = proto.Clone(p).(*authpb.Permission)
	}
	return &pb.AuthRoleGetResponse{Perm: perms}, nil
}

func (s *Store) RoleList() *pb.AuthRoleListResponse {
	s.mu.RLock()
	defer s.mu.RUnlock()
	names := make([]string, 0, len(s.roles))
	for n := range s.roles {
		names = append(names, n)
	}
	sort.Strings(names)
	return &pb.AuthRoleListResponse{Roles: names}
}

func (s *Store) Status() *pb.AuthStatusResponse {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return &pb.AuthStatusResponse{Enabled: s.enabled, AuthRevision: s.revision}
}

// ---- changes (from raft, inside the apply batch) ----

// Apply applies one auth request from the log and returns its response.
// Every member reaches the same result from the same state.
func (s *Store) Apply(m Meta, r *pb.InternalRaftRequest) (proto.Message, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case r.AuthEnable != nil:
		return &pb.AuthEnableResponse{}, s.enable(m)
	case r.AuthDisable != nil:
		if s.enabled {
			s.enabled = false
			s.bump(m)
			m.SetMeta(metaEnabled, []byte("0"))
		}
		return &pb.AuthDisableResponse{}, nil
	case r.AuthUserAdd != nil:
		return &pb.AuthUserAddResponse{}, s.userAdd(m, r.AuthUserAdd)
	case r.AuthUserDelete != nil:
		name := r.AuthUserDelete.Name
		if s.enabled && name == rootUser {
			return nil, ErrInvalidAuthMgmt
		}
		if _, ok := s.users[name]; !ok {
			return nil, ErrUserNotFound
		}
		delete(s.users, name)
		m.SetMeta(metaUser+name, nil)
		s.bump(m)
		return &pb.AuthUserDeleteResponse{}, nil
	case r.AuthUserChangePassword != nil:
		c := r.AuthUserChangePassword
		u, ok := s.users[c.Name]
		if !ok {
			return nil, ErrUserNotFound
		}
		u = proto.Clone(u).(*authpb.User)
		u.Password = []byte(c.HashedPassword)
		s.putUser(m, u)
		s.bump(m)
		return &pb.AuthUserChangePasswordResponse{}, nil
	case r.AuthUserGrantRole != nil:
		g := r.AuthUserGrantRole
		u, ok := s.users[g.User]
		if !ok {
			return nil, ErrUserNotFound
		}
		if _, ok := s.roles[g.Role]; !ok && g.Role != rootRole {
			return nil, ErrRoleNotFound
		}
		if slices.Contains(u.Roles, g.Role) {
			return &pb.AuthUserGrantRoleResponse{}, nil // etcd: no error, no change
		}
		u = proto.Clone(u).(*authpb.User)
		u.Roles = append(u.Roles, g.Role)
		sort.Strings(u.Roles)
		s.putUser(m, u)
		s.bump(m)
		return &pb.AuthUserGrantRoleResponse{}, nil
	case r.AuthUserRevokeRole != nil:
		g := r.AuthUserRevokeRole
		if s.enabled && g.Name == rootUser && g.Role == rootRole {
			return nil, ErrInvalidAuthMgmt
		}
		u, ok := s.users[g.Name]
		if !ok {
			return nil, ErrUserNotFound
		}
		i := slices.Index(u.Roles, g.Role)
		if i < 0 {
			return nil, ErrRoleNotGranted
		}
		u = proto.Clone(u).(*authpb.User)
		u.Roles = slices.Delete(u.Roles, i, i+1)
		s.putUser(m, u)
		s.bump(m)
		return &pb.AuthUserRevokeRoleResponse{}, nil
	case r.AuthRoleAdd != nil:
		name := r.AuthRoleAdd.Name
		if name == "" {
			return nil, ErrRoleEmpty
		}
		if _, ok := s.roles[name]; ok {
			return nil, ErrRoleAlreadyExist
		}
		s.putRole(m, &authpb.Role{Name: []byte(name)})
		s.bump(m)
		return &pb.AuthRoleAddResponse{}, nil
	case r.AuthRoleDelete != nil:
		name := r.AuthRoleDelete.Role
		if s.enabled && name == rootRole {
			return nil, ErrInvalidAuthMgmt
		}
		if _, ok := s.roles[name]; !ok {
			return nil, ErrRoleNotFound
		}
		delete(s.roles, name)
		m.SetMeta(metaRole+name, nil)
		for _, u := range s.users { // a deleted role is revoked from everyone
			if i := slices.Index(u.Roles, name); i >= 0 {
				nu := proto.Clone(u).(*authpb.User)
				nu.Roles = slices.Delete(nu.Roles, i, i+1)
				s.putUser(m, nu)
			}
		}
		s.bump(m)
		return &pb.AuthRoleDeleteResponse{}, nil
	case r.AuthRoleGrantPermission != nil:
		g := r.AuthRoleGrantPermission
		role, ok := s.roles[g.Name]
		if !ok {
			return nil, ErrRoleNotFound
		}
		if g.Perm == nil {
			return nil, ErrPermissionNotGiven
		}
		role = proto.Clone(role).(*authpb.Role)
		replaced := false
		for i, p := range role.KeyPermission {
			if string(p.Key) == string(g.Perm.Key) && string(p.RangeEnd) == string(g.Perm.RangeEnd) {
				role.KeyPermission[i].PermType = g.Perm.PermType
				replaced = true
			}
		}
		if !replaced {
			role.KeyPermission = append(role.KeyPermission, proto.Clone(g.Perm).(*authpb.Permission))
			sort.Slice(role.KeyPermission, func(i, j int) bool {
				a, b := role.KeyPermission[i], role.KeyPermission[j]
				if string(a.Key) != string(b.Key) {
					return string(a.Key) < string(b.Key)
				}
				return string(a.RangeEnd) < string(b.RangeEnd)
			})
		}
		s.putRole(m, role)
		s.bump(m)
		return &pb.AuthRoleGrantPermissionResponse{}, nil
	case r.AuthRoleRevokePermission != nil:
		g := r.AuthRoleRevokePermission
		role, ok := s.roles[g.Role]
		if !ok {
			return nil, ErrRoleNotFound
		}
		i := slices.IndexFunc(role.KeyPermission, func(p *authpb.Permission) bool {
			return string(p.Key) == string(g.Key) && string(p.RangeEnd) == string(g.RangeEnd)
		})
		if i < 0 {
			return nil, ErrPermissionNotGranted
		}
		role = proto.Clone(role).(*authpb.Role)
		role.KeyPermission = slices.Delete(role.KeyPermission, i, i+1)
		s.putRole(m, role)
		s.bump(m)
		return &pb.AuthRoleRevokePermissionResponse{}, nil
	}
	return nil, fmt.Errorf("auth: not an auth request")
}

// ErrPermissionNotGranted is etcd's "permission is not granted to the role".
var ErrPermissionNotGranted = errors.New("auth: permission is not granted to the role")

func (s *Store) enable(m Meta) error {
	if s.enabled {
		return nil
	}
	u, ok := s.users[rootUser]
	if !ok {
		return ErrRootUserNotExist
	}
	if !slices.Contains(u.Roles, rootRole) {
		return ErrRootRoleNotExist
	}
	s.enabled = true
	m.SetMeta(metaEnabled, []byte("1"))
	s.bump(m)
	return nil
}

func (s *Store) userAdd(m Meta, r *pb.AuthUserAddRequest) error {
	if r.Name == "" {
		return ErrUserEmpty
	}
	if _, ok := s.users[r.Name]; ok {
		return ErrUserAlreadyExist
	}
	u := &authpb.User{Name: []byte(r.Name), Password: []byte(r.HashedPassword)}
	if r.Options != nil && r.Options.NoPassword {
		u.Options = &authpb.UserAddOptions{NoPassword: true}
		u.Password = nil
	}
	s.putUser(m, u)
	s.bump(m)
	return nil
}

func (s *Store) putUser(m Meta, u *authpb.User) {
	s.users[string(u.Name)] = u
	b, _ := proto.Marshal(u) // a valid message always marshals
	m.SetMeta(metaUser+string(u.Name), b)
}

func (s *Store) putRole(m Meta, r *authpb.Role) {
	s.roles[string(r.Name)] = r
	b, _ := proto.Marshal(r)
	m.SetMeta(metaRole+string(r.Name), b)
}

func (s *Store) bump(m Meta) {
	s.revision++
	m.SetMeta(metaRevision, []byte(strconv.FormatUint(s.revision, 10)))
}
