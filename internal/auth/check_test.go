package auth

import (
	"testing"

	"go.etcd.io/etcd/api/v3/authpb"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
)

type nopMeta map[string][]byte

func (m nopMeta) SetMeta(k string, v []byte) { m[k] = v }

func grant(t *testing.T, s *Store, m Meta, role string, typ authpb.Permission_Type, key, end string) {
	t.Helper()
	if _, err := s.Apply(m, &pb.InternalRaftRequest{AuthRoleGrantPermission: &pb.AuthRoleGrantPermissionRequest{
		Name: role, Perm: &authpb.Permission{PermType: typ, Key: []byte(key), RangeEnd: []byte(end)}}}); err != nil {
		t.Fatal(err)
	}
}

// TestAllowed: ranges are checked on their whole extent, across the union
// of a user's permissions; prefix and from-key requests are not allowed
// by a permission on their first key alone.
func TestAllowed(t *testing.T) {
	s, m := New(), nopMeta{}
	for _, r := range []*pb.InternalRaftRequest{
		{AuthUserAdd: &pb.AuthUserAddRequest{Name: "u", HashedPassword: "x"}},
		{AuthRoleAdd: &pb.AuthRoleAddRequest{Name: "r"}},
		{AuthUserGrantRole: &pb.AuthUserGrantRoleRequest{User: "u", Role: "r"}},
	} {
		if _, err := s.Apply(m, r); err != nil {
			t.Fatal(err)
		}
	}
	grant(t, s, m, "r", authpb.READ, "/a", "")
	grant(t, s, m, "r", authpb.READWRITE, "/p/", "/p0")
	grant(t, s, m, "r", authpb.READ, "/q", "/r")
	grant(t, s, m, "r", authpb.READ, "/r", "/s")
	grant(t, s, m, "r", authpb.WRITE, "/w", "\x00")
	for _, tc := range []struct {
		a    Access
		r    Range
		want bool
	}{
		{Read, Range{Key: []byte("/a")}, true},
		{Write, Range{Key: []byte("/a")}, false},
		{Read, Range{Key: []byte("/a"), End: []byte("/b")}, false}, // a range from an allowed key
		{Read, Range{Key: []byte("/p/x")}, true},
		{Write, Range{Key: []byte("/p/"), End: []byte("/p0")}, true},
		{Read, Range{Key: []byte("/p/"), End: []byte("\x00")}, false}, // from-key past the prefix
		{Read, Range{Key: []byte("/q"), End: []byte("/s")}, true},     // union of two
		{Read, Range{Key: []byte("/q"), End: []byte("/t")}, false},
		{Write, Range{Key: []byte("/zzz")}, true},
		{Write, Range{Key: []byte("/w"), End: []byte("\x00")}, true},
		{Read, Range{Key: []byte("\x00"), End: []byte("\x00")}, false},
	} {
		if got := s.Allowed("u", tc.a, tc.r); got != tc.want {
			t.Errorf("Allowed(%v, %q..%q) = %v, want %v", tc.a, tc.r.Key, tc.r.End, got, tc.want)
		}
	}
	if s.Allowed("nobody", Read, Range{Key: []byte("/a")}) {
		t.Error("an unknown user is allowed")
	}
}

// TestEnableNeedsRoot and the revision: every change bumps it.
func TestEnableNeedsRoot(t *testing.T) {
	s, m := New(), nopMeta{}
	if _, err := s.Apply(m, &pb.InternalRaftRequest{AuthEnable: &pb.AuthEnableRequest{}}); err != ErrRootUserNotExist {
		t.Fatalf("enable without root: %v", err)
	}
	_, _ = s.Apply(m, &pb.InternalRaftRequest{AuthUserAdd: &pb.AuthUserAddRequest{Name: "root", HashedPassword: "x"}})
	if _, err := s.Apply(m, &pb.InternalRaftRequest{AuthEnable: &pb.AuthEnableRequest{}}); err != ErrRootRoleNotExist {
		t.Fatalf("enable without the root role: %v", err)
	}
	_, _ = s.Apply(m, &pb.InternalRaftRequest{AuthRoleAdd: &pb.AuthRoleAddRequest{Name: "root"}})
	_, _ = s.Apply(m, &pb.InternalRaftRequest{AuthUserGrantRole: &pb.AuthUserGrantRoleRequest{User: "root", Role: "root"}})
	before := s.Revision()
	if _, err := s.Apply(m, &pb.InternalRaftRequest{AuthEnable: &pb.AuthEnableRequest{}}); err != nil || !s.Enabled() {
		t.Fatalf("enable: %v", err)
	}
	if s.Revision() <= before {
		t.Fatal("enabling did not bump the auth revision")
	}
	// The persisted form loads back to the same state.
	s2 := New()
	if err := s2.Load(m); err != nil || !s2.Enabled() || s2.Revision() != s.Revision() || !s2.IsRoot("root") {
		t.Fatalf("reloaded: enabled=%v rev=%d root=%v err=%v", s2.Enabled(), s2.Revision(), s2.IsRoot("root"), err)
	}
}
