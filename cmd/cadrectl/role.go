package main

import (
	"fmt"

	"github.com/spf13/cobra"
	"go.etcd.io/etcd/api/v3/authpb"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/protobuf/proto"
)

// role add|delete|get|list|grant-permission|revoke-permission, with
// etcdctl's arguments, outputs and exit codes.
func (a *app) newRoleCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:     "role <subcommand>",
		Short:   "Role related commands. Use `cadrectl role --help` to see subcommands",
		Long:    "Role related commands",
		GroupID: groupAuth,
	}
	var prefix, fromKey bool
	grant := &cobra.Command{
		Use:   "grant-permission [options] <role name> <permission type> <key> [endkey]",
		Short: "Grants a key to a role",
		RunE:  func(c *cobra.Command, args []string) error { return a.roleGrant(c, args, prefix, fromKey) },
	}
	grant.Flags().BoolVar(&prefix, "prefix", false, "grant a prefix permission")
	grant.Flags().BoolVar(&fromKey, "from-key", false, "grant a permission of keys that are greater than or equal to the given key using byte compare")
	revoke := &cobra.Command{
		Use:   "revoke-permission <role name> <key> [endkey]",
		Short: "Revokes a key from a role",
		RunE:  func(c *cobra.Command, args []string) error { return a.roleRevoke(c, args, prefix, fromKey) },
	}
	revoke.Flags().BoolVar(&prefix, "prefix", false, "revoke a prefix permission")
	revoke.Flags().BoolVar(&fromKey, "from-key", false, "revoke a permission of keys that are greater than or equal to the given key using byte compare")
	cmd.AddCommand(
		&cobra.Command{Use: "add <role name>", Short: "Adds a new role", RunE: a.roleAdd},
		&cobra.Command{Use: "delete <role name>", Short: "Deletes a role", RunE: a.roleDelete},
		&cobra.Command{Use: "get <role name>", Short: "Gets detailed information of a role", RunE: a.roleGetCmd},
		&cobra.Command{Use: "list", Short: "Lists all roles", RunE: a.roleList},
		grant, revoke,
	)
	cmd.AddCommand(a.newRoleMembershipCommands()...)
	return cmd
}

func (a *app) roleAdd(cmd *cobra.Command, args []string) error {
	if len(args) != 1 {
		return exitf(exitBadArgs, "role add command requires role name as its argument")
	}
	return a.authCall(cmd, func(cli *clientv3.Client, c *cobra.Command) (proto.Message, error) {
		ctx, cancel := a.commandContext(c)
		defer cancel()
		r, err := cli.RoleAdd(ctx, args[0])
		return (*pb.AuthRoleAddResponse)(r), err
	}, fmt.Sprintf("Role %s created\n", args[0]), true)
}

func (a *app) roleDelete(cmd *cobra.Command, args []string) error {
	if len(args) != 1 {
		return exitf(exitBadArgs, "role delete command requires role name as its argument")
	}
	return a.authCall(cmd, func(cli *clientv3.Client, c *cobra.Command) (proto.Message, error) {
		ctx, cancel := a.commandContext(c)
		defer cancel()
		r, err := cli.RoleDelete(ctx, args[0])
		return (*pb.AuthRoleDeleteResponse)(r), err
	}, fmt.Sprintf("Role %s deleted\n", args[0]), true)
}

func (a *app) roleGetCmd(cmd *cobra.Command, args []string) error {
	if len(args) != 1 {
		return exitf(exitBadArgs, "role get command requires role name as its argument")
	}
	cli, p, err := a.connect(cmd)
	if err != nil {
		return err
	}
	defer cli.Close()
	ctx, cancel := a.commandContext(cmd)
	resp, err := cli.RoleGet(ctx, args[0])
	cancel()
	if err != nil {
		return requestFailed(err)
	}
	return p.roleGet(args[0], (*pb.AuthRoleGetResponse)(resp))
}

// roleGet prints one role's permissions (role get, user get --detail).
func (p *printer) roleGet(role string, r *pb.AuthRoleGetResponse) error {
	switch p.format {
	case formatFields:
		p.fieldsHeader(r.GetHeader())
		for _, perm := range r.GetPerm() {
			fmt.Fprintln(p.out, `"PermType" : `, perm.GetPermType().String())
			fmt.Fprintf(p.out, "\"Key\" : %q\n", string(perm.GetKey()))
			fmt.Fprintf(p.out, "\"RangeEnd\" : %q\n", string(perm.GetRangeEnd()))
		}
		return nil
	case formatSimple:
	default:
		return p.message(r)
	}
	fmt.Fprintf(p.out, "Role %s\n", role)
	if role == "root" && r.GetPerm() == nil {
		fmt.Fprint(p.out, "KV Read:\n\t[, <open ended>\nKV Write:\n\t[, <open ended>\n")
		return nil
	}
	for _, section := range []struct {
		title string
		types []authpb.Permission_Type
	}{
		{"KV Read:", []authpb.Permission_Type{authpb.READ, authpb.READWRITE}},
		{"KV Write:", []authpb.Permission_Type{authpb.WRITE, authpb.READWRITE}},
	} {
		fmt.Fprintln(p.out, section.title)
		for _, perm := range r.GetPerm() {
			if perm.GetPermType() != section.types[0] && perm.GetPermType() != section.types[1] {
				continue
			}
			key, end := string(perm.GetKey()), string(perm.GetRangeEnd())
			switch {
			case end == "":
				fmt.Fprintf(p.out, "\t%s\n", key)
				continue
			case end != "\x00":
				fmt.Fprintf(p.out, "\t[%s, %s)", key, end)
			default:
				fmt.Fprintf(p.out, "\t[%s, <open ended>", key)
			}
			if key != "" && clientv3.GetPrefixRangeEnd(key) == end {
				fmt.Fprintf(p.out, " (prefix %s)", key)
			}
			fmt.Fprint(p.out, "\n")
		}
	}
	return nil
}

func (a *app) roleList(cmd *cobra.Command, args []string) error {
	if len(args) != 0 {
		return exitf(exitBadArgs, "role list command requires no arguments")
	}
	cli, p, err := a.connect(cmd)
	if err != nil {
		return err
	}
	defer cli.Close()
	ctx, cancel := a.commandContext(cmd)
	resp, err := cli.RoleList(ctx)
	cancel()
	if err != nil {
		return requestFailed(err)
	}
	r := (*pb.AuthRoleListResponse)(resp)
	switch p.format {
	case formatSimple:
		for _, role := range r.GetRoles() {
			fmt.Fprintln(p.out, role)
		}
		return nil
	case formatFields:
		p.fieldsHeader(r.GetHeader())
		fmt.Fprint(p.out, `"Roles" :`)
		for _, role := range r.GetRoles() {
			fmt.Fprintf(p.out, " %q", role)
		}
		fmt.Fprintln(p.out)
		return nil
	}
	return p.message(r)
}

// permRange is etcdctl's reading of <key> [endkey] with --prefix and
// --from-key ("" key means every key).
func permRange(args []string, prefix, fromKey bool) (key, end string, err error) {
	key = args[0]
	if key == "" {
		if prefix && fromKey {
			return "", "", exitf(exitBadArgs, "--from-key and --prefix flags are mutually exclusive")
		}
		if prefix || fromKey {
			end = "\x00"
		}
		return "\x00", end, nil
	}
	if len(args) == 1 {
		switch {
		case prefix && fromKey:
			return "", "", exitf(exitBadArgs, "--from-key and --prefix flags are mutually exclusive")
		case prefix:
			return key, clientv3.GetPrefixRangeEnd(key), nil
		case fromKey:
			return key, "\x00", nil
		}
		return key, "", nil
	}
	if prefix {
		return "", "", exitf(exitBadArgs, "unexpected endkey argument with --prefix flag")
	}
	if fromKey {
		return "", "", exitf(exitBadArgs, "unexpected endkey argument with --from-key flag")
	}
	return key, args[1], nil
}

func (a *app) roleGrant(cmd *cobra.Command, args []string, prefix, fromKey bool) error {
	if len(args) < 3 {
		return exitf(exitBadArgs, "role grant command requires role name, permission type, and key [endkey] as its argument")
	}
	perm, err := clientv3.StrToPermissionType(args[1])
	if err != nil {
		return exitWith(exitBadArgs, err)
	}
	key, end, err := permRange(args[2:], prefix, fromKey)
	if err != nil {
		return err
	}
	return a.authCall(cmd, func(cli *clientv3.Client, c *cobra.Command) (proto.Message, error) {
		ctx, cancel := a.commandContext(c)
		defer cancel()
		r, err := cli.RoleGrantPermission(ctx, args[0], key, end, perm)
		return (*pb.AuthRoleGrantPermissionResponse)(r), err
	}, fmt.Sprintf("Role %s updated\n", args[0]), true)
}

func (a *app) roleRevoke(cmd *cobra.Command, args []string, prefix, fromKey bool) error {
	if len(args) < 2 {
		return exitf(exitBadArgs, "role revoke-permission command requires role name and key [endkey] as its argument")
	}
	key, end, err := permRange(args[1:], prefix, fromKey)
	if err != nil {
		return err
	}
	// etcdctl prints the key as typed, not the "\x00" it sends for "".
	var msg string
	switch {
	case end == "":
		msg = fmt.Sprintf("Permission of key %s is revoked from role %s\n", args[1], args[0])
	case end != "\x00":
		msg = fmt.Sprintf("Permission of range [%s, %s) is revoked from role %s\n", args[1], end, args[0])
	default:
		msg = fmt.Sprintf("Permission of range [%s, <open ended> is revoked from role %s\n", args[1], args[0])
	}
	return a.authCall(cmd, func(cli *clientv3.Client, c *cobra.Command) (proto.Message, error) {
		ctx, cancel := a.commandContext(c)
		defer cancel()
		r, err := cli.RoleRevokePermission(ctx, args[0], key, end)
		return (*pb.AuthRoleRevokePermissionResponse)(r), err
	}, msg, true)
}
