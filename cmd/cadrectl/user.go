package main

import (
	"bufio"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	clientv3 "go.etcd.io/etcd/client/v3"
	"golang.org/x/term"
	"google.golang.org/protobuf/proto"
)

// user add|delete|get|list|passwd|grant-role|revoke-role, with etcdctl's
// arguments, outputs and exit codes.
func (a *app) newUserCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:     "user <subcommand>",
		Short:   "User related commands. Use `cadrectl user --help` to see subcommands",
		Long:    "User related commands",
		GroupID: groupAuth,
	}
	var (
		interactive  bool
		newPassword  string
		noPassword   bool
		detail       bool
		passwdInterx bool
	)
	add := &cobra.Command{
		Use:   "add <user name or user:password> [options]",
		Short: "Adds a new user",
		RunE: func(c *cobra.Command, args []string) error {
			return a.userAdd(c, args, interactive, newPassword, noPassword)
		},
	}
	add.Flags().BoolVar(&interactive, "interactive", true, "Read password from stdin instead of interactive terminal")
	add.Flags().StringVar(&newPassword, "new-user-password", "", "Supply password from the command line flag")
	add.Flags().BoolVar(&noPassword, "no-password", false, "Create a user without password (CN based auth only)")
	get := &cobra.Command{
		Use:   "get <user name> [options]",
		Short: "Gets detailed information of a user",
		RunE:  func(c *cobra.Command, args []string) error { return a.userGet(c, args, detail) },
	}
	get.Flags().BoolVar(&detail, "detail", false, "Show permissions of roles granted to the user")
	passwd := &cobra.Command{
		Use:   "passwd <user name> [options]",
		Short: "Changes password of user",
		RunE:  func(c *cobra.Command, args []string) error { return a.userPasswd(c, args, passwdInterx) },
	}
	passwd.Flags().BoolVar(&passwdInterx, "interactive", true, "If true, read password from stdin instead of interactive terminal")
	cmd.AddCommand(add,
		&cobra.Command{Use: "delete <user name>", Short: "Deletes a user", RunE: a.userDelete},
		get,
		&cobra.Command{Use: "list", Short: "Lists all users", RunE: a.userList},
		passwd,
		&cobra.Command{Use: "grant-role <user name> <role name>", Short: "Grants a role to a user", RunE: a.userGrantRole},
		&cobra.Command{Use: "revoke-role <user name> <role name>", Short: "Revokes a role from a user", RunE: a.userRevokeRole},
	)
	return cmd
}

// authCall connects, runs one Auth request under --command-timeout and
// prints its response: the simple text, or the response itself in the
// other formats (fieldsHeader adds the header for "fields" when asked).
func (a *app) authCall(cmd *cobra.Command, do func(cli *clientv3.Client, c *cobra.Command) (proto.Message, error), simple string, fieldsHeaderOnly bool) error {
	cli, p, err := a.connect(cmd)
	if err != nil {
		return err
	}
	defer cli.Close()
	resp, err := do(cli, cmd)
	if err != nil {
		return requestFailed(err)
	}
	switch {
	case p.format == formatSimple:
		fmt.Fprint(p.out, simple)
		return nil
	case p.format == formatFields && fieldsHeaderOnly:
		p.fieldsHeader(headerOf(resp))
		return nil
	}
	return p.message(resp)
}

// headerOf returns the response header of any Auth response.
func headerOf(m proto.Message) *pb.ResponseHeader {
	if h, ok := m.(interface{ GetHeader() *pb.ResponseHeader }); ok {
		return h.GetHeader()
	}
	return nil
}

func (a *app) userAdd(cmd *cobra.Command, args []string, interactive bool, newPassword string, noPassword bool) error {
	if len(args) != 1 {
		return exitf(exitBadArgs, "user add command requires user name as its argument")
	}
	user, password := args[0], ""
	switch {
	case noPassword:
	case newPassword != "":
		password = newPassword
	default:
		if name, pw, ok := strings.Cut(args[0], ":"); ok {
			if name == "" {
				return exitf(exitBadArgs, "empty user name is not allowed")
			}
			user, password = name, pw
		} else {
			var err error
			if password, err = a.readPassword(args[0], interactive); err != nil {
				return err
			}
		}
	}
	return a.authCall(cmd, func(cli *clientv3.Client, c *cobra.Command) (proto.Message, error) {
		ctx, cancel := a.commandContext(c)
		defer cancel()
		r, err := cli.UserAddWithOptions(ctx, user, password, &clientv3.UserAddOptions{NoPassword: noPassword})
		return (*pb.AuthUserAddResponse)(r), err
	}, fmt.Sprintf("User %s created\n", user), true)
}

// readPassword reads a password as etcdctl does: a word from stdin with
// --interactive=false, else twice from the terminal.
func (a *app) readPassword(user string, interactive bool) (string, error) {
	if !interactive {
		var pw string
		_, _ = fmt.Fscan(bufio.NewReader(a.in), &pw)
		return pw, nil
	}
	f, ok := a.in.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return "", exitf(exitBadArgs, "failed to ask password: standard input is not a terminal; pass the password on stdin with --interactive=false, or as <user>:<password>")
	}
	ask := func(prompt string) (string, error) {
		fmt.Fprint(a.errOut, prompt)
		b, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(a.errOut)
		return string(b), err
	}
	p1, err := ask(fmt.Sprintf("Password of %s: ", user))
	if err != nil {
		return "", exitf(exitBadArgs, "failed to ask password: %w", err)
	}
	if p1 == "" {
		return "", exitf(exitBadArgs, "empty password")
	}
	p2, err := ask(fmt.Sprintf("Type password of %s again for confirmation: ", user))
	if err != nil {
		return "", exitf(exitBadArgs, "failed to ask password: %w", err)
	}
	if p1 != p2 {
		return "", exitf(exitBadArgs, "given passwords are different")
	}
	return p1, nil
}

func (a *app) userDelete(cmd *cobra.Command, args []string) error {
	if len(args) != 1 {
		return exitf(exitBadArgs, "user delete command requires user name as its argument")
	}
	return a.authCall(cmd, func(cli *clientv3.Client, c *cobra.Command) (proto.Message, error) {
		ctx, cancel := a.commandContext(c)
		defer cancel()
		r, err := cli.UserDelete(ctx, args[0])
		return (*pb.AuthUserDeleteResponse)(r), err
	}, fmt.Sprintf("User %s deleted\n", args[0]), true)
}

func (a *app) userGet(cmd *cobra.Command, args []string, detail bool) error {
	if len(args) != 1 {
		return exitf(exitBadArgs, "user get command requires user name as its argument")
	}
	name := args[0]
	cli, p, err := a.connect(cmd)
	if err != nil {
		return err
	}
	defer cli.Close()
	ctx, cancel := a.commandContext(cmd)
	defer cancel()
	resp, err := cli.UserGet(ctx, name)
	if err != nil {
		return requestFailed(err)
	}
	if detail {
		fmt.Fprintf(p.out, "User: %s\n", name)
		for _, role := range resp.Roles {
			fmt.Fprint(p.out, "\n")
			rr, err := cli.RoleGet(ctx, role)
			if err != nil {
				return requestFailed(err)
			}
			if err := p.roleGet(role, (*pb.AuthRoleGetResponse)(rr)); err != nil {
				return err
			}
		}
		return nil
	}
	if p.format == formatSimple {
		fmt.Fprintf(p.out, "User: %s\n", name)
		fmt.Fprint(p.out, "Roles:")
		for _, role := range resp.Roles {
			fmt.Fprintf(p.out, " %s", role)
		}
		fmt.Fprint(p.out, "\n")
		return nil
	}
	return p.message((*pb.AuthUserGetResponse)(resp))
}

func (a *app) userList(cmd *cobra.Command, args []string) error {
	if len(args) != 0 {
		return exitf(exitBadArgs, "user list command requires no arguments")
	}
	cli, p, err := a.connect(cmd)
	if err != nil {
		return err
	}
	defer cli.Close()
	ctx, cancel := a.commandContext(cmd)
	resp, err := cli.UserList(ctx)
	cancel()
	if err != nil {
		return requestFailed(err)
	}
	if p.format == formatSimple {
		for _, u := range resp.Users {
			fmt.Fprintln(p.out, u)
		}
		return nil
	}
	return p.message((*pb.AuthUserListResponse)(resp))
}

func (a *app) userPasswd(cmd *cobra.Command, args []string, interactive bool) error {
	if len(args) != 1 {
		return exitf(exitBadArgs, "user passwd command requires user name as its argument")
	}
	password, err := a.readPassword(args[0], interactive)
	if err != nil {
		return err
	}
	return a.authCall(cmd, func(cli *clientv3.Client, c *cobra.Command) (proto.Message, error) {
		ctx, cancel := a.commandContext(c)
		defer cancel()
		r, err := cli.UserChangePassword(ctx, args[0], password)
		return (*pb.AuthUserChangePasswordResponse)(r), err
	}, "Password updated\n", true)
}

func (a *app) userGrantRole(cmd *cobra.Command, args []string) error {
	if len(args) != 2 {
		return exitf(exitBadArgs, "user grant command requires user name and role name as its argument")
	}
	return a.authCall(cmd, func(cli *clientv3.Client, c *cobra.Command) (proto.Message, error) {
		ctx, cancel := a.commandContext(c)
		defer cancel()
		r, err := cli.UserGrantRole(ctx, args[0], args[1])
		return (*pb.AuthUserGrantRoleResponse)(r), err
	}, fmt.Sprintf("Role %s is granted to user %s\n", args[1], args[0]), true)
}

func (a *app) userRevokeRole(cmd *cobra.Command, args []string) error {
	if len(args) != 2 {
		return exitf(exitBadArgs, "user revoke-role requires user name and role name as its argument")
	}
	return a.authCall(cmd, func(cli *clientv3.Client, c *cobra.Command) (proto.Message, error) {
		ctx, cancel := a.commandContext(c)
		defer cancel()
		r, err := cli.UserRevokeRole(ctx, args[0], args[1])
		return (*pb.AuthUserRevokeRoleResponse)(r), err
	}, fmt.Sprintf("Role %s is revoked from user %s\n", args[1], args[0]), true)
}
