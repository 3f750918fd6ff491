package main

import (
	"fmt"
	"slices"
	"strings"

	"github.com/spf13/cobra"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// membershipActions are the member changes a role can be granted without
// root (a Cadre extension; see docs/AUTH.md).
var membershipActions = []string{"add", "add-learner", "remove", "update", "promote", "move-leader"}

// membershipGrantKey must match the server's api.MembershipGrantKey.
func membershipGrantKey(action string) string { return "\x00cadre/membership/" + action }

// role grant-membership|revoke-membership <role> <action>...: a Cadre
// extension that lets a non-root role change members. It is stored as a
// write permission on a reserved key, so etcd's tools see (and back up) it
// as an ordinary permission; a range permission never confers it.
func (a *app) newRoleMembershipCommands() []*cobra.Command {
	run := func(grant bool) func(*cobra.Command, []string) error {
		return func(cmd *cobra.Command, args []string) error {
			if len(args) < 2 {
				return exitf(exitBadArgs, "role %s-membership requires a role name and at least one action (%s)",
					map[bool]string{true: "grant", false: "revoke"}[grant], strings.Join(membershipActions, ", "))
			}
			for _, act := range args[1:] {
				if !slices.Contains(membershipActions, act) {
					return exitf(exitBadArgs, "unknown membership action %q: use %s", act, strings.Join(membershipActions, ", "))
				}
			}
			cli, _, err := a.connect(cmd)
			if err != nil {
				return err
			}
			defer cli.Close()
			ctx, cancel := a.commandContext(cmd)
			defer cancel()
			for _, act := range args[1:] {
				if grant {
					_, err = cli.RoleGrantPermission(ctx, args[0], membershipGrantKey(act), "", clientv3.PermissionType(clientv3.PermWrite))
				} else {
					_, err = cli.RoleRevokePermission(ctx, args[0], membershipGrantKey(act), "")
				}
				if err != nil {
					return requestFailed(err)
				}
			}
			verb := map[bool]string{true: "granted to", false: "revoked from"}[grant]
			fmt.Fprintf(a.out, "Membership actions %s %s role %s\n", strings.Join(args[1:], ", "), verb, args[0])
			return nil
		}
	}
	return []*cobra.Command{
		{Use: "grant-membership <role name> <action>...", Short: "Lets a role change members without root (add, add-learner, remove, update, promote, move-leader)", RunE: run(true)},
		{Use: "revoke-membership <role name> <action>...", Short: "Revokes membership actions from a role", RunE: run(false)},
	}
}
