package main

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// alarm list|disarm and defrag, with etcdctl's outputs.

func (a *app) newAlarmCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:     "alarm <subcommand>",
		Short:   "Alarm related commands",
		GroupID: groupCluster,
	}
	run := func(disarm bool) func(*cobra.Command, []string) error {
		return func(c *cobra.Command, args []string) error {
			if len(args) != 0 {
				name := "list"
				if disarm {
					name = "disarm"
				}
				return exitf(exitBadArgs, "alarm %s command accepts no arguments", name)
			}
			cli, _, err := a.connect(c)
			if err != nil {
				return err
			}
			defer cli.Close()
			ctx, cancel := a.commandContext(c)
			defer cancel()
			var resp *clientv3.AlarmResponse
			if disarm {
				resp, err = cli.AlarmDisarm(ctx, &clientv3.AlarmMember{})
			} else {
				resp, err = cli.AlarmList(ctx)
			}
			if err != nil {
				return exitWith(exitFailure, err)
			}
			// etcdctl prints each alarm with %+v; so does this.
			for _, m := range (*pb.AlarmResponse)(resp).GetAlarms() {
				fmt.Fprintf(a.out, "%+v\n", m)
			}
			return nil
		}
	}
	cmd.AddCommand(
		&cobra.Command{Use: "list", Short: "Lists all alarms", RunE: run(false)},
		&cobra.Command{Use: "disarm", Short: "Disarms all alarms", RunE: run(true)},
	)
	return cmd
}

func (a *app) newDefragCommand() *cobra.Command {
	var cluster bool
	cmd := &cobra.Command{
		Use:     "defrag",
		Short:   "Defragments the storage of the etcd members with given endpoints",
		GroupID: groupCluster,
		RunE: func(c *cobra.Command, _ []string) error {
			spec, err := a.configSpec(c)
			if err != nil {
				return err
			}
			eps, err := a.endpoints(c, spec, cluster)
			if err != nil {
				return err
			}
			failures := 0
			for _, ep := range eps {
				one := *spec
				one.Endpoints = []string{ep}
				cli, err := newClient(&one)
				if err != nil {
					return err
				}
				ctx, cancel := a.commandContext(c)
				start := time.Now()
				_, err = cli.Defragment(ctx, ep)
				d := time.Since(start)
				cancel()
				cli.Close()
				if err != nil {
					fmt.Fprintf(a.errOut, "Failed to defragment etcd member[%s]. took %s. (%v)\n", ep, d, err)
					failures++
					continue
				}
				fmt.Fprintf(a.out, "Finished defragmenting etcd member[%s]. took %s\n", ep, d)
			}
			if failures > 0 {
				return quietFailure()
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&cluster, "cluster", false, "use all endpoints from the cluster member list")
	return cmd
}
