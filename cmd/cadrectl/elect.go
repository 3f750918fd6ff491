package main

import (
	"context"
	"errors"

	"github.com/spf13/cobra"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
)

func (a *app) newElectCommand() *cobra.Command {
	var listen bool
	cmd := &cobra.Command{
		Use:   "elect <election-name> [proposal]",
		Short: "Observes and participates in leader election",
		Long: `Observes and participates in leader election.

With a proposal, campaigns, prints the leader key and proposal once elected
and stays leader until interrupted (SIGINT or SIGTERM), then resigns. With
--listen, prints every new leader's key and proposal until interrupted.`,
		GroupID: groupConcurrency,
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.elect(cmd, listen, args)
		},
	}
	cmd.Flags().BoolVarP(&listen, "listen", "l", false, "observation mode")
	return cmd
}

func (a *app) elect(cmd *cobra.Command, listen bool, args []string) error {
	if len(args) != 1 && len(args) != 2 {
		return exitf(exitBadArgs, "elect takes one election name argument and an optional proposal argument")
	}
	if len(args) == 1 && !listen {
		return exitf(exitBadArgs, "no proposal argument but -l not set")
	}
	if len(args) == 2 && listen {
		return exitf(exitBadArgs, "proposal given but -l is set")
	}
	cli, p, err := a.connect(cmd)
	if err != nil {
		return err
	}
	defer cli.Close()
	ctx, stop := a.interruptible(cmd.Context())
	defer stop()
	if listen {
		err = a.observe(ctx, cli, p, args[0])
	} else {
		err = a.campaign(ctx, cli, p, args[0], args[1])
	}
	var xe *exitError
	if err != nil && !errors.As(err, &xe) {
		err = exitWith(exitFailure, err)
	}
	return err
}

// newSession opens the election's session (etcdctl's default TTL, 60 s)
// and returns a function that revokes its lease: etcdctl leaves it to
// expire, but nobody needs it once the command ends.
func (a *app) newSession(ctx context.Context, cli *clientv3.Client) (*concurrency.Session, func(), error) {
	s, err := concurrency.NewSession(cli)
	if err != nil {
		return nil, nil, err
	}
	return s, func() {
		cctx, cancel := a.cleanupContext(ctx)
		defer cancel()
		_, _ = cli.Revoke(cctx, s.Lease())
	}, nil
}

// observe prints the leader's key and proposal on every change until ctx
// ends (exit 0) or the observation breaks (exit 1).
func (a *app) observe(ctx context.Context, cli *clientv3.Client, p *printer, name string) error {
	s, revoke, err := a.newSession(ctx, cli)
	if err != nil {
		return err
	}
	defer revoke()
	e := concurrency.NewElection(s, name)
	for resp := range e.Observe(ctx) {
		if err := p.get(resp); err != nil {
			return err
		}
	}
	if ctx.Err() == nil {
		return errors.New("elect: observer lost")
	}
	return nil
}

// campaign waits to be elected, prints the leader key and proposal, and
// resigns when ctx ends.
func (a *app) campaign(ctx context.Context, cli *clientv3.Client, p *printer, name, proposal string) error {
	s, revoke, err := a.newSession(ctx, cli)
	if err != nil {
		return err
	}
	defer revoke()
	e := concurrency.NewElection(s, name)
	if err := e.Campaign(ctx, proposal); err != nil {
		return err
	}
	resp, err := cli.Get(ctx, e.Key())
	if err != nil {
		return err
	}
	if err := p.get(resp); err != nil {
		return err
	}
	select {
	case <-ctx.Done():
	case <-s.Done():
		return errors.New("elect: session expired")
	}
	rctx, cancel := a.cleanupContext(ctx)
	defer cancel()
	return e.Resign(rctx)
}
