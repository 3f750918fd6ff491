package main

import (
	"fmt"
	"strconv"

	"github.com/spf13/cobra"
	clientv3 "go.etcd.io/etcd/client/v3"
)

func (a *app) newCompactionCommand() *cobra.Command {
	var physical bool
	cmd := &cobra.Command{
		Use:     "compaction [options] <revision>",
		Short:   "Compacts the event history in the cluster",
		GroupID: groupKV,
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.compaction(cmd, physical, args)
		},
	}
	cmd.Flags().BoolVar(&physical, "physical", false, "'true' to wait for compaction to physically remove all old revisions")
	return cmd
}

// compaction prints the same line in every output format, as etcdctl does.
func (a *app) compaction(cmd *cobra.Command, physical bool, args []string) error {
	if len(args) != 1 {
		return exitf(exitBadArgs, "compaction command needs 1 argument")
	}
	rev, err := strconv.ParseInt(args[0], 10, 64)
	if err != nil {
		return exitWith(exitFailure, err)
	}
	var opts []clientv3.CompactOption
	if physical {
		opts = append(opts, clientv3.WithCompactPhysical())
	}
	cli, _, err := a.connect(cmd)
	if err != nil {
		return err
	}
	defer cli.Close()
	ctx, cancel := a.commandContext(cmd)
	_, err = cli.Compact(ctx, rev, opts...)
	cancel()
	if err != nil {
		return requestFailed(err)
	}
	fmt.Fprintln(a.out, "compacted revision", rev)
	return nil
}
