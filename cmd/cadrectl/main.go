// Command cadrectl is the command-line client for Cadre. For the commands it
// shares with etcdctl v3.7 it accepts the same flags and prints the same
// output, byte for byte, with the same exit codes, so scripts written for
// etcdctl keep working.
//
// Layout: main.go builds the command tree for one invocation; global.go holds
// the global flags and the client; printer.go and table.go hold the output
// formats shared by all commands; every other file is one command group and
// carries its own printer methods, so a new command is one new file.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	clientv3 "go.etcd.io/etcd/client/v3"
)

func main() {
	// etcdctl lets users abbreviate commands ("mem list"); cobra only offers
	// that as a process-wide switch, so it is set here once and not in run().
	cobra.EnablePrefixMatching = true
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

// run executes one cadrectl invocation and returns its exit code. It holds
// no state between calls, so tests can call it in-process.
func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	a := newApp(stdin, stdout, stderr, os.LookupEnv)
	a.catchSignals = true
	return a.execute(args)
}

// app is one invocation: its streams, its environment and its flag values.
type app struct {
	in        io.Reader
	out       io.Writer
	errOut    io.Writer
	lookupEnv func(string) (string, bool)
	global    globalFlags
	// spec is the last connection configuration built, for diagnosing a
	// request that timed out before reaching any member.
	spec *clientv3.ConfigSpec
	// catchSignals lets lock and elect turn SIGINT/SIGTERM into a clean
	// unlock or resign, as etcdctl does. Only the real process sets it;
	// in-process tests cancel the context instead.
	catchSignals bool
}

func newApp(stdin io.Reader, stdout, stderr io.Writer, lookupEnv func(string) (string, bool)) *app {
	return &app{in: stdin, out: stdout, errOut: stderr, lookupEnv: lookupEnv}
}

func (a *app) newRootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:   "cadrectl",
		Short: "A command line client for Cadre (etcdctl-compatible).",
		// Errors and usage are printed by execute, so the exit code and the
		// stream they go to stay under our control.
		SilenceErrors: true,
		SilenceUsage:  true,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			return a.applyEnv(cmd.Root().PersistentFlags())
		},
	}
	root.SetIn(a.in)
	root.SetOut(a.out)
	root.SetErr(a.errOut)
	a.global.register(root.PersistentFlags())

	root.AddGroup(
		&cobra.Group{ID: groupKV, Title: "Key-value commands"},
		&cobra.Group{ID: groupCluster, Title: "Cluster maintenance commands"},
		&cobra.Group{ID: groupConcurrency, Title: "Concurrency commands"},
		&cobra.Group{ID: groupAuth, Title: "Authentication commands"},
		&cobra.Group{ID: groupUtility, Title: "Utility commands"},
	)
	root.AddCommand(
		a.newGetCommand(),
		a.newPutCommand(),
		a.newDelCommand(),
		a.newTxnCommand(),
		a.newCompactionCommand(),
		a.newWatchCommand(),
		a.newLeaseCommand(),
		a.newLockCommand(),
		a.newElectCommand(),
		a.newEndpointCommand(),
		a.newMemberCommand(),
		a.newMoveLeaderCommand(),
		a.newAutopilotCommand(),
		a.newRecoverCommand(),
		a.newAlarmCommand(),
		a.newDefragCommand(),
		a.newSnapshotCommand(),
		a.newAuthCommand(),
		a.newUserCommand(),
		a.newRoleCommand(),
		a.newVersionCommand(),
		a.newOptionsCommand(root),
	)
	root.SetHelpCommandGroupID(groupUtility)
	root.SetCompletionCommandGroupID(groupUtility)

	// Global flags are listed by "cadrectl options", not in every help page.
	root.PersistentFlags().VisitAll(func(f *pflag.Flag) { f.Hidden = true })
	root.Flags().BoolP("help", "h", false, "help for cadrectl")
	_ = root.Flags().MarkHidden("help")
	defaultHelp := root.HelpFunc()
	root.SetHelpFunc(func(cmd *cobra.Command, args []string) {
		defaultHelp(cmd, args)
		fmt.Fprintln(cmd.OutOrStdout(), `Use "cadrectl options" for a list of global command-line options (applies to all commands).`)
	})
	return root
}

// Command groups, as etcdctl shows them in help.
const (
	groupKV          = "kv"
	groupCluster     = "cluster maintenance"
	groupConcurrency = "concurrency"
	groupAuth        = "authentication"
	groupUtility     = "utility"
)

func (a *app) execute(args []string) int {
	return a.executeContext(context.Background(), args)
}

// executeContext runs one invocation under ctx: cancelling it ends the
// streaming commands (watch, keep-alive, lock, elect) as a signal would.
func (a *app) executeContext(ctx context.Context, args []string) int {
	root := a.newRootCommand()
	root.SetArgs(args)
	cmd, err := root.ExecuteContextC(ctx)
	if err == nil {
		return exitSuccess
	}
	var ee *exitError
	if errors.As(err, &ee) {
		if !ee.quiet {
			fmt.Fprintln(a.errOut, "Error:", ee.err)
		}
		if ee.hint == "" && errors.Is(ee.err, context.DeadlineExceeded) {
			ee.hint = connectionHint(a.spec)
		}
		if ee.hint == "" {
			ee.hint = authHint(ee.err, a.global.user)
		}
		if ee.hint != "" {
			fmt.Fprintln(a.errOut, "hint:", ee.hint)
		}
		return ee.code
	}
	// A parse error from cobra itself (unknown flag or command): etcdctl
	// prints it with the usage of the command and exits with 1.
	fmt.Fprintln(a.errOut, "Error:", err)
	if cmd != nil {
		fmt.Fprintln(a.errOut, cmd.UsageString())
	}
	return exitFailure
}

// interruptible returns a context that ends with ctx or, in the real
// process, on SIGINT or SIGTERM. Only the commands that must clean up on an
// interrupt (lock, elect) use it; the rest die of the signal like etcdctl.
func (a *app) interruptible(ctx context.Context) (context.Context, context.CancelFunc) {
	if a.catchSignals {
		return signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	}
	return context.WithCancel(ctx)
}
