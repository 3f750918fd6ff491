package main

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
)

// auth enable|disable|status, with etcdctl's outputs.
func (a *app) newAuthCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:     "auth <enable or disable>",
		Short:   "Enable or disable authentication. Use `cadrectl auth --help` to see subcommands",
		Long:    "Enable or disable authentication",
		GroupID: groupAuth,
	}
	cmd.AddCommand(
		&cobra.Command{Use: "enable", Short: "Enables authentication", RunE: a.authEnable},
		&cobra.Command{Use: "disable", Short: "Disables authentication", RunE: a.authDisable},
		&cobra.Command{Use: "status", Short: "Returns authentication status", RunE: a.authStatus},
	)
	return cmd
}

func (a *app) authEnable(cmd *cobra.Command, args []string) error {
	if len(args) != 0 {
		return exitf(exitBadArgs, "auth enable command does not accept any arguments")
	}
	cli, _, err := a.connect(cmd)
	if err != nil {
		return err
	}
	defer cli.Close()
	ctx, cancel := a.commandContext(cmd)
	defer cancel()
	// As etcdctl: a missing root role is created and granted to root, once.
	for attempt := 0; attempt < 2; attempt++ {
		if _, err = cli.AuthEnable(ctx); err == nil || !errors.Is(err, rpctypes.ErrRootRoleNotExist) {
			break
		}
		if _, err = cli.RoleAdd(ctx, "root"); err != nil {
			break
		}
		if _, err = cli.UserGrantRole(ctx, "root", "root"); err != nil {
			break
		}
	}
	if err != nil {
		return requestFailed(err)
	}
	fmt.Fprintln(a.out, "Authentication Enabled")
	return nil
}

func (a *app) authDisable(cmd *cobra.Command, args []string) error {
	if len(args) != 0 {
		return exitf(exitBadArgs, "auth disable command does not accept any arguments")
	}
	cli, _, err := a.connect(cmd)
	if err != nil {
		return err
	}
	defer cli.Close()
	ctx, cancel := a.commandContext(cmd)
	_, err = cli.AuthDisable(ctx)
	cancel()
	if err != nil {
		return requestFailed(err)
	}
	fmt.Fprintln(a.out, "Authentication Disabled")
	return nil
}

func (a *app) authStatus(cmd *cobra.Command, args []string) error {
	if len(args) != 0 {
		return exitf(exitBadArgs, "auth status command does not accept any arguments")
	}
	cli, p, err := a.connect(cmd)
	if err != nil {
		return err
	}
	defer cli.Close()
	ctx, cancel := a.commandContext(cmd)
	resp, err := cli.AuthStatus(ctx)
	cancel()
	if err != nil {
		return requestFailed(err)
	}
	r := (*pb.AuthStatusResponse)(resp)
	if p.format == formatSimple {
		fmt.Fprintln(p.out, "Authentication Status:", r.GetEnabled())
		fmt.Fprintln(p.out, "AuthRevision:", r.GetAuthRevision())
		return nil
	}
	return p.message(r)
}
