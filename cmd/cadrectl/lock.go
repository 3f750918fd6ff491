package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"

	"github.com/spf13/cobra"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
)

// defaultLockTTL is the session TTL of lock, in seconds, as in etcdctl.
const defaultLockTTL = 10

func (a *app) newLockCommand() *cobra.Command {
	ttl := defaultLockTTL
	cmd := &cobra.Command{
		Use:   "lock <lockname> [exec-command arg1 arg2 ...]",
		Short: "Acquires a named lock",
		Long: `Acquires a named lock.

Without a command, prints the lock's key and holds the lock until interrupted
(SIGINT or SIGTERM), then releases it. With a command, runs it while holding
the lock, with ETCD_LOCK_KEY and ETCD_LOCK_REV set, and exits with its exit
code. Put "--" before a command that has flags of its own.`,
		GroupID: groupConcurrency,
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.lock(cmd, ttl, args)
		},
	}
	cmd.Flags().IntVar(&ttl, "ttl", ttl, "timeout for session")
	return cmd
}

func (a *app) lock(cmd *cobra.Command, ttl int, args []string) error {
	if len(args) == 0 {
		return exitf(exitBadArgs, "lock takes a lock name argument and an optional command to execute")
	}
	cli, p, err := a.connect(cmd)
	if err != nil {
		return err
	}
	defer cli.Close()
	ctx, stop := a.interruptible(cmd.Context())
	defer stop()
	if err := a.lockUntilInterrupted(ctx, cli, p, ttl, args[0], args[1:]); err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			// The command failed: exit with its code, as etcdctl.
			return exitWith(ee.ExitCode(), err)
		}
		var xe *exitError
		if errors.As(err, &xe) {
			return err
		}
		return exitWith(exitFailure, err)
	}
	return nil
}

// lockUntilInterrupted holds the lock while command runs, or, without a
// command, until ctx ends.
func (a *app) lockUntilInterrupted(ctx context.Context, cli *clientv3.Client, p *printer, ttl int, name string, command []string) error {
	s, err := concurrency.NewSession(cli, concurrency.WithTTL(ttl))
	if err != nil {
		return err
	}
	// etcdctl leaves its session's lease to expire; revoking it frees the
	// lease at once. Bounded: the server may be gone by now.
	defer func() {
		cctx, cancel := a.cleanupContext(ctx)
		defer cancel()
		_, _ = cli.Revoke(cctx, s.Lease())
	}()
	m := concurrency.NewMutex(s, name)
	if err := m.Lock(ctx); err != nil {
		return err
	}

	if len(command) > 0 {
		c := exec.Command(command[0], command[1:]...)
		c.Env = append([]string{
			"ETCD_LOCK_KEY=" + m.Key(),
			fmt.Sprintf("ETCD_LOCK_REV=%d", m.Header().Revision),
		}, os.Environ()...)
		c.Stdin, c.Stdout, c.Stderr = a.in, a.out, a.errOut
		err := c.Run()
		uctx, cancel := a.cleanupContext(ctx)
		defer cancel()
		if uerr := m.Unlock(uctx); err == nil {
			err = uerr
		}
		return err
	}

	resp, err := cli.Get(ctx, m.Key())
	if err != nil {
		return err
	}
	if len(resp.Kvs) == 0 {
		return errors.New("lock lost on init")
	}
	if err := p.get(resp); err != nil {
		return err
	}
	select {
	case <-ctx.Done():
		uctx, cancel := a.cleanupContext(ctx)
		defer cancel()
		return m.Unlock(uctx)
	case <-s.Done():
		return errors.New("session expired")
	}
}

// cleanupContext bounds the requests made after an interrupt (unlock,
// resign, revoke): they must run although ctx has ended.
func (a *app) cleanupContext(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), a.global.commandTimeout)
}
