package main

import (
	"context"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/cadrekv/cadre/tests/framework"
)

// TestCompatAuthCommands: user, role and auth commands print what etcdctl
// prints, in every format, for successes and errors, against the real etcd
// v3.7.3 (so the expected outputs are etcd's own answers) and against
// Cadre (so Cadre's Auth API answers as etcd does).
func TestCompatAuthCommands(t *testing.T) {
	t.Run("etcd", func(t *testing.T) { compatAuth(t, framework.EtcdServer(t)) })
	t.Run("cadre", func(t *testing.T) { compatAuth(t, framework.Server(t)) })
}

func compatAuth(t *testing.T, bin string) {
	s := startCompatServerBin(t, bin)
	root := func(t *testing.T) *clientv3.Client {
		t.Helper()
		cli, err := clientv3.New(clientv3.Config{Endpoints: []string{s.ep}, DialTimeout: 2 * time.Second, Username: "root", Password: "rootpw", Logger: zap.NewNop()})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cli.Close() })
		return cli
	}
	ctx := func() context.Context {
		c, cancel := context.WithTimeout(t.Context(), 5*time.Second)
		t.Cleanup(cancel)
		return c
	}
	// reset helpers: each mutating case starts from the same state for
	// both tools.
	noUser := func(name string) func(*testing.T, *clientv3.Client) []string {
		return func(_ *testing.T, cli *clientv3.Client) []string { _, _ = cli.UserDelete(ctx(), name); return nil }
	}
	noRole := func(name string) func(*testing.T, *clientv3.Client) []string {
		return func(_ *testing.T, cli *clientv3.Client) []string { _, _ = cli.RoleDelete(ctx(), name); return nil }
	}
	setup := func(_ *testing.T, cli *clientv3.Client) []string {
		_, _ = cli.RoleAdd(ctx(), "r1")
		_, _ = cli.UserAdd(ctx(), "u1", "pw1")
		_, _ = cli.UserGrantRole(ctx(), "u1", "r1")
		for _, p := range [][3]string{{"/a", "", "readwrite"}, {"/p/", clientv3.GetPrefixRangeEnd("/p/"), "read"}, {"/f", "\x00", "write"}, {"/x", "/y", "read"}} {
			_, _ = cli.RoleGrantPermission(ctx(), "r1", p[0], p[1], clientv3.PermissionType(map[string]int32{"read": 0, "write": 1, "readwrite": 2}[p[2]]))
		}
		return nil
	}
	setup(t, s.cli)

	var cases []compatCase
	add := func(c compatCase) { cases = append(cases, c) }
	for _, w := range []string{"simple", "json", "fields", "table"} {
		add(compatCase{name: "role add " + w, args: []string{"role", "add", "r2", "-w", w}, prepare: noRole("r2")})
		add(compatCase{name: "user add flag " + w, args: []string{"user", "add", "u2", "--new-user-password", "pw2", "-w", w}, prepare: noUser("u2")})
		add(compatCase{name: "role get " + w, args: []string{"role", "get", "r1", "-w", w}})
		add(compatCase{name: "role list " + w, args: []string{"role", "list", "-w", w}})
		add(compatCase{name: "user get " + w, args: []string{"user", "get", "u1", "-w", w}})
		add(compatCase{name: "user get detail " + w, args: []string{"user", "get", "u1", "--detail", "-w", w}})
		add(compatCase{name: "user list " + w, args: []string{"user", "list", "-w", w}})
		add(compatCase{name: "auth status " + w, args: []string{"auth", "status", "-w", w}})
		add(compatCase{name: "grant " + w, args: []string{"role", "grant-permission", "r1", "read", "/g", "-w", w}})
		add(compatCase{name: "user grant-role " + w, args: []string{"user", "grant-role", "u1", "r1", "-w", w}})
	}
	for _, c := range []compatCase{
		{name: "user add colon", args: []string{"user", "add", "u3:pw3"}, prepare: noUser("u3")},
		{name: "user add stdin", args: []string{"user", "add", "u4", "--interactive=false"}, stdin: "pw4\n", prepare: noUser("u4")},
		{name: "user add no password", args: []string{"user", "add", "u5", "--no-password"}, prepare: noUser("u5")},
		{name: "user add empty name", args: []string{"user", "add", ":pw"}},
		{name: "user add exists", args: []string{"user", "add", "u1:x"}},
		{name: "user add no args", args: []string{"user", "add"}},
		{name: "user get missing", args: []string{"user", "get", "nobody"}},
		{name: "user delete", args: []string{"user", "delete", "u6"}, prepare: func(_ *testing.T, cli *clientv3.Client) []string {
			_, _ = cli.UserAdd(ctx(), "u6", "x")
			return nil
		}},
		{name: "user delete missing", args: []string{"user", "delete", "nobody"}},
		{name: "user passwd", args: []string{"user", "passwd", "u1", "--interactive=false"}, stdin: "newpw\n"},
		{name: "user revoke-role", args: []string{"user", "revoke-role", "u1", "r9"}, prepare: func(_ *testing.T, cli *clientv3.Client) []string {
			_, _ = cli.RoleAdd(ctx(), "r9")
			_, _ = cli.UserGrantRole(ctx(), "u1", "r9")
			return nil
		}},
		{name: "user revoke-role missing", args: []string{"user", "revoke-role", "u1", "nosuch"}},
		{name: "role add exists", args: []string{"role", "add", "r1"}},
		{name: "role get missing", args: []string{"role", "get", "nosuch"}},
		{name: "role delete", args: []string{"role", "delete", "r7"}, prepare: func(_ *testing.T, cli *clientv3.Client) []string {
			_, _ = cli.RoleAdd(ctx(), "r7")
			return nil
		}},
		{name: "grant prefix", args: []string{"role", "grant-permission", "r1", "readwrite", "/q/", "--prefix"}},
		{name: "grant from-key", args: []string{"role", "grant-permission", "r1", "write", "/k", "--from-key"}},
		{name: "grant range", args: []string{"role", "grant-permission", "r1", "read", "/m", "/n"}},
		{name: "grant all keys", args: []string{"role", "grant-permission", "r1", "read", "", "--prefix"}},
		{name: "grant bad type", args: []string{"role", "grant-permission", "r1", "rw", "/a"}},
		{name: "grant prefix and end", args: []string{"role", "grant-permission", "r1", "read", "/a", "/b", "--prefix"}},
		{name: "grant prefix and from-key", args: []string{"role", "grant-permission", "r1", "read", "/a", "--prefix", "--from-key"}},
		{name: "grant too few", args: []string{"role", "grant-permission", "r1", "read"}},
		{name: "revoke key", args: []string{"role", "revoke-permission", "r1", "/rk"}, prepare: func(_ *testing.T, cli *clientv3.Client) []string {
			_, _ = cli.RoleGrantPermission(ctx(), "r1", "/rk", "", clientv3.PermissionType(clientv3.PermRead))
			return nil
		}},
		{name: "revoke prefix", args: []string{"role", "revoke-permission", "r1", "/rp/", "--prefix"}, prepare: func(_ *testing.T, cli *clientv3.Client) []string {
			_, _ = cli.RoleGrantPermission(ctx(), "r1", "/rp/", clientv3.GetPrefixRangeEnd("/rp/"), clientv3.PermissionType(clientv3.PermRead))
			return nil
		}},
		{name: "revoke from-key", args: []string{"role", "revoke-permission", "r1", "/rf", "--from-key"}, prepare: func(_ *testing.T, cli *clientv3.Client) []string {
			_, _ = cli.RoleGrantPermission(ctx(), "r1", "/rf", "\x00", clientv3.PermissionType(clientv3.PermRead))
			return nil
		}},
		{name: "revoke missing", args: []string{"role", "revoke-permission", "r1", "/never"}},
		{name: "auth enable without root", args: []string{"auth", "enable"}},
	} {
		add(c)
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { s.compare(t, c) })
	}

	// The auth workflow: root, enable (creating the root role as etcdctl
	// does), then commands as root, then disable.
	_, _ = s.cli.UserAdd(ctx(), "root", "rootpw")
	for _, c := range []compatCase{
		{name: "auth enable", args: []string{"auth", "enable"}, prepare: func(t *testing.T, _ *clientv3.Client) []string {
			_, _ = root(t).AuthDisable(ctx())
			return nil
		}},
		{name: "status as root", args: []string{"--user", "root:rootpw", "auth", "status"}},
		{name: "role get root", args: []string{"--user", "root:rootpw", "role", "get", "root"}},
		{name: "wrong password", args: []string{"--user", "root:nope", "user", "list"}},
		{name: "no user", args: []string{"user", "list"}},
		{name: "user password flag", args: []string{"--user", "root", "--password", "rootpw", "user", "list"}},
		{name: "auth disable", args: []string{"--user", "root:rootpw", "auth", "disable"}, prepare: func(t *testing.T, _ *clientv3.Client) []string {
			_, _ = root(t).AuthEnable(ctx())
			return nil
		}},
	} {
		t.Run(c.name, func(t *testing.T) { s.compare(t, c) })
	}
}
