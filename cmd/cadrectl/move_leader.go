package main

import (
	"fmt"
	"strconv"

	"github.com/spf13/cobra"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	clientv3 "go.etcd.io/etcd/client/v3"
)

func (a *app) newMoveLeaderCommand() *cobra.Command {
	return &cobra.Command{
		Use:     "move-leader <transferee-member-id>",
		Short:   "Transfers leadership to another cluster member.",
		GroupID: groupCluster,
		RunE:    a.moveLeader,
	}
}

// moveLeader works as etcdctl's: MoveLeader must reach the leader, so the
// endpoints are asked in turn which member they are and who leads, and the
// request goes to the first endpoint that is the leader.
func (a *app) moveLeader(cmd *cobra.Command, args []string) error {
	if len(args) != 1 {
		return exitf(exitBadArgs, "move-leader command needs 1 argument")
	}
	target, err := strconv.ParseUint(args[0], 16, 64)
	if err != nil {
		return exitWith(exitBadArgs, err)
	}
	spec, err := a.configSpec(cmd)
	if err != nil {
		return err
	}
	p, err := a.newPrinter()
	if err != nil {
		return err
	}

	ctx, cancel := a.commandContext(cmd)
	defer cancel()
	var (
		leaderCli *clientv3.Client
		leaderID  uint64
	)
	for _, ep := range spec.Endpoints {
		one := *spec
		one.Endpoints = []string{ep}
		cli, err := newClient(&one)
		if err != nil {
			return err
		}
		resp, err := cli.Status(ctx, ep)
		if err != nil {
			cli.Close()
			return requestFailed(err)
		}
		if resp.Header.GetMemberId() == resp.Leader {
			leaderCli, leaderID = cli, resp.Leader
			break
		}
		cli.Close()
	}
	if leaderCli == nil {
		return exitf(exitBadArgs, "no leader endpoint given at %v", spec.Endpoints)
	}
	defer leaderCli.Close()
	resp, err := leaderCli.MoveLeader(ctx, target)
	if err != nil {
		return requestFailed(err)
	}
	return p.moveLeader(leaderID, target, resp)
}

// moveLeader prints the transfer; like etcdctl, json does not honour --hex
// here and fields and table are not supported.
func (p *printer) moveLeader(from, to uint64, r *clientv3.MoveLeaderResponse) error {
	resp := (*pb.MoveLeaderResponse)(r)
	switch p.format {
	case formatSimple:
		fmt.Fprintf(p.out, "Leadership transferred from %x to %x\n", from, to)
		return nil
	case formatJSON:
		p.json(resp)
		return nil
	}
	return p.message(resp)
}
