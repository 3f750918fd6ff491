package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"sync"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// Argument errors of watch, worded as etcdctl's.
var (
	errWatchArgs          = errors.New("bad number of arguments")
	errWatchArgsEnv       = errors.New("bad number of arguments (found conflicting environment key)")
	errWatchArgsSeparator = errors.New("bad number of arguments (found separator --, but no commands)")
	errWatchPrefixRange   = errors.New("`range_end` and `--prefix` are mutually exclusive")
)

// watchOptions are watch's flags; interactive mode parses every "watch"
// line with a fresh set of them.
type watchOptions struct {
	interactive    bool
	prefix         bool
	rev            int64
	prevKV         bool
	progressNotify bool
}

func (o *watchOptions) register(fs *pflag.FlagSet) {
	fs.BoolVarP(&o.interactive, "interactive", "i", false, "Interactive mode")
	fs.BoolVar(&o.prefix, "prefix", false, "Watch on a prefix if prefix is set")
	fs.Int64Var(&o.rev, "rev", 0, "Revision to start watching")
	fs.BoolVar(&o.prevKV, "prev-kv", false, "get the previous key-value pair before the event happens")
	fs.BoolVar(&o.progressNotify, "progress-notify", false, "get periodic watch progress notification from server")
}

func (a *app) newWatchCommand() *cobra.Command {
	var o watchOptions
	cmd := &cobra.Command{
		Use:   "watch [options] [key or prefix] [range_end] [--] [exec-command arg1 arg2 ...]",
		Short: "Watches events stream on keys or prefixes",
		Long: `Watches events stream on keys or prefixes.

With "-- command args", the command runs once per event with
ETCD_WATCH_REVISION, ETCD_WATCH_EVENT_TYPE, ETCD_WATCH_KEY and
ETCD_WATCH_VALUE set. The key may come from CADRECTL_WATCH_KEY or
ETCDCTL_WATCH_KEY (and CADRECTL_/ETCDCTL_WATCH_RANGE_END) instead.

With -i, watch requests ("watch [options] key [range_end] [-- command]")
and "progress" are read from standard input, one per line.`,
		GroupID: groupKV,
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.watch(cmd, &o, args)
		},
	}
	o.register(cmd.Flags())
	return cmd
}

// watchEnv is the key (and range end) given by the environment.
type watchEnv struct{ key, rangeEnd string }

// watchEnv reads CADRECTL_WATCH_KEY/RANGE_END, or else the ETCDCTL_ pair.
func (a *app) watchEnv() (watchEnv, error) {
	for _, prefix := range [...]string{"CADRECTL", "ETCDCTL"} {
		key, _ := a.lookupEnv(prefix + "_WATCH_KEY")
		end, _ := a.lookupEnv(prefix + "_WATCH_RANGE_END")
		if key == "" && end != "" {
			return watchEnv{}, exitf(exitBadArgs, "%s_WATCH_KEY is empty but got %s_WATCH_RANGE_END=%q", prefix, prefix, end)
		}
		if key != "" {
			return watchEnv{key: key, rangeEnd: end}, nil
		}
	}
	return watchEnv{}, nil
}

// splitWatchArgs separates the positional arguments of a watch, pos, at
// the "--" (dash is its index in pos, or -1) into the key arguments and the
// command to execute, and puts the environment's key in front.
func splitWatchArgs(pos []string, dash int, env watchEnv) (keys, execArgs []string, err error) {
	keys = pos
	if dash >= 0 {
		keys, execArgs = pos[:dash], pos[dash:]
		if len(execArgs) == 0 {
			return nil, nil, errWatchArgsSeparator
		}
	}
	if env.key == "" {
		if len(keys) == 0 {
			return nil, nil, errWatchArgs
		}
		return keys, execArgs, nil
	}
	if len(keys) > 0 {
		return nil, nil, errWatchArgsEnv
	}
	keys = []string{env.key}
	if env.rangeEnd != "" {
		keys = append(keys, env.rangeEnd)
	}
	return keys, execArgs, nil
}

// op builds the watch request. Like etcdctl, arguments after the range end
// are ignored.
func (o *watchOptions) op(keys []string) (string, []clientv3.OpOption, error) {
	if len(keys) < 1 {
		return "", nil, errWatchArgs
	}
	opts := []clientv3.OpOption{clientv3.WithRev(o.rev)}
	if len(keys) == 2 {
		if o.prefix {
			return "", nil, errWatchPrefixRange
		}
		opts = append(opts, clientv3.WithRange(keys[1]))
	}
	if o.prefix {
		opts = append(opts, clientv3.WithPrefix())
	}
	if o.prevKV {
		opts = append(opts, clientv3.WithPrevKV())
	}
	if o.progressNotify {
		opts = append(opts, clientv3.WithProgressNotify())
	}
	return keys[0], opts, nil
}

func (a *app) watch(cmd *cobra.Command, o *watchOptions, args []string) error {
	env, err := a.watchEnv()
	if err != nil {
		return err
	}
	var keys, execArgs []string
	if !o.interactive {
		if keys, execArgs, err = splitWatchArgs(args, cmd.ArgsLenAtDash(), env); err != nil {
			return exitWith(exitBadArgs, err)
		}
	}
	cli, p, err := a.connect(cmd)
	if err != nil {
		return err
	}
	defer cli.Close()
	// Without a leader the server cancels the watch instead of leaving it
	// silently stalled.
	ctx := clientv3.WithRequireLeader(cmd.Context())
	out := &watchOutput{a: a, p: p}
	if o.interactive {
		return a.watchInteractive(ctx, cli, out, env)
	}
	key, opts, err := o.op(keys)
	if err != nil {
		return exitWith(exitBadArgs, err)
	}
	if err := out.stream(ctx, cli.Watch(ctx, key, opts...), execArgs); err != nil {
		return err
	}
	if ctx.Err() != nil {
		// Interrupted; only in-process, the real process dies of the
		// signal as etcdctl does.
		return &exitError{code: exitInterrupted, err: ctx.Err(), quiet: true}
	}
	return exitf(exitInterrupted, "watch is canceled by the server")
}

// watchInteractive serves "watch ..." and "progress" lines from stdin until
// it ends, which is an error (exit code 3), as in etcdctl.
func (a *app) watchInteractive(ctx context.Context, cli *clientv3.Client, out *watchOutput, env watchEnv) error {
	type line struct {
		text string
		err  error
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// The reader may stay blocked on stdin after we return; the process
	// is ending then, and tests close their stdin.
	lines := make(chan line)
	go func() {
		r := bufio.NewReader(a.in)
		for {
			s, err := r.ReadString('\n')
			select {
			case lines <- line{s, err}:
			case <-ctx.Done():
				return
			}
			if err != nil {
				return
			}
		}
	}()
	fatal := make(chan error, 1)
	for {
		var l line
		select {
		case <-ctx.Done():
			return &exitError{code: exitInterrupted, err: ctx.Err(), quiet: true}
		case err := <-fatal:
			return err
		case l = <-lines:
		}
		if l.err != nil {
			// A last line without a newline is dropped, as etcdctl does.
			return exitf(exitInvalidInput, "error reading watch request line: %w", l.err)
		}
		text := l.text[:len(l.text)-1]
		req, err := parseWatchLine(text, env)
		if err != nil {
			return err
		}
		switch {
		case req.invalid != "":
			out.errorf("%s\n", req.invalid)
		case req.progress:
			if err := cli.RequestProgress(ctx); err != nil {
				return exitWith(exitFailure, err)
			}
		default:
			wch := cli.Watch(ctx, req.key, req.opts...)
			go func() {
				if err := out.stream(ctx, wch, req.execArgs); err != nil {
					select {
					case fatal <- err:
					default:
					}
				}
			}()
		}
	}
}

// watchLine is one parsed line of interactive mode.
type watchLine struct {
	invalid  string // the complaint for a line that is skipped
	progress bool
	key      string
	opts     []clientv3.OpOption
	execArgs []string
}

// parseWatchLine parses one interactive line. Lines etcdctl skips get a
// complaint; lines it exits on (bad flags, bad argument count) are errors.
func parseWatchLine(text string, env watchEnv) (watchLine, error) {
	args, err := splitArgs(text)
	if err != nil {
		return watchLine{}, exitWith(exitInvalidInput, err)
	}
	if len(args) == 0 {
		return watchLine{invalid: fmt.Sprintf("Invalid command: %s (watch and progress supported)", text)}, nil
	}
	switch args[0] {
	case "watch":
	case "progress":
		return watchLine{progress: true}, nil
	default:
		return watchLine{invalid: fmt.Sprintf("Invalid command %s (only support watch)", text)}, nil
	}
	if len(args) < 2 && env.key == "" {
		return watchLine{invalid: fmt.Sprintf("Invalid command %s (command type or key is not provided)", text)}, nil
	}
	var o watchOptions
	fs := pflag.NewFlagSet("watch", pflag.ContinueOnError)
	fs.SetOutput(io.Discard)
	o.register(fs)
	if err := fs.Parse(args[1:]); err != nil {
		return watchLine{}, exitWith(exitBadArgs, err)
	}
	keys, execArgs, err := splitWatchArgs(fs.Args(), fs.ArgsLenAtDash(), env)
	if err != nil {
		return watchLine{}, exitWith(exitBadArgs, err)
	}
	key, opts, err := o.op(keys)
	if err != nil {
		return watchLine{invalid: fmt.Sprintf("Invalid command %s (%v)", text, err)}, nil
	}
	return watchLine{key: key, opts: opts, execArgs: execArgs}, nil
}

// watchOutput prints the responses of one or more watches; the lock keeps
// each response (and the commands it runs) in one piece when several
// watches print at once.
type watchOutput struct {
	mu sync.Mutex
	a  *app
	p  *printer
}

func (w *watchOutput) errorf(format string, args ...any) {
	w.mu.Lock()
	defer w.mu.Unlock()
	fmt.Fprintf(w.a.errOut, format, args...)
}

// stream prints every response of wch until it closes, running execArgs
// (if any) once per event.
func (w *watchOutput) stream(ctx context.Context, wch clientv3.WatchChan, execArgs []string) error {
	for resp := range wch {
		if err := w.response(ctx, &resp, execArgs); err != nil {
			return err
		}
	}
	return nil
}

func (w *watchOutput) response(ctx context.Context, resp *clientv3.WatchResponse, execArgs []string) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if resp.Canceled {
		fmt.Fprintf(w.a.errOut, "watch was canceled (%v)\n", resp.Err())
	}
	if resp.IsProgressNotify() {
		fmt.Fprintf(w.a.out, "progress notify: %d\n", resp.Header.GetRevision())
	}
	if err := w.p.watch(resp); err != nil {
		return err
	}
	for _, ev := range resp.Events {
		if len(execArgs) == 0 {
			break
		}
		c := exec.CommandContext(ctx, execArgs[0], execArgs[1:]...)
		// The command sees this process's environment, as under etcdctl;
		// the values are Go-quoted (%q) exactly as etcdctl sets them.
		c.Env = append(os.Environ(),
			fmt.Sprintf("ETCD_WATCH_REVISION=%d", resp.Header.GetRevision()),
			fmt.Sprintf("ETCD_WATCH_EVENT_TYPE=%q", ev.GetType()),
			fmt.Sprintf("ETCD_WATCH_KEY=%q", ev.GetKv().GetKey()),
			fmt.Sprintf("ETCD_WATCH_VALUE=%q", ev.GetKv().GetValue()))
		c.Stdout, c.Stderr = w.a.out, w.a.errOut
		if err := c.Run(); err != nil {
			fmt.Fprintf(w.a.errOut, "command %q error (%v)\n", execArgs, err)
			return &exitError{code: exitFailure, err: err, quiet: true}
		}
	}
	return nil
}

func (p *printer) watch(r *clientv3.WatchResponse) error {
	switch p.format {
	case formatSimple:
		for _, ev := range r.Events {
			fmt.Fprintln(p.out, ev.GetType())
			if ev.GetPrevKv() != nil {
				p.simpleKV(ev.GetPrevKv())
			}
			p.simpleKV(ev.GetKv())
		}
	case formatFields:
		p.fieldsHeader(r.Header)
		for _, ev := range r.Events {
			fmt.Fprintln(p.out, `"Type" :`, ev.GetType())
			if ev.GetPrevKv() != nil {
				p.fieldsKV("Prev", ev.GetPrevKv())
			}
			p.fieldsKV("", ev.GetKv())
		}
	case formatJSON:
		// client/v3's struct as it is, field names and all, as etcdctl.
		p.json(r)
	case formatProtobuf:
		return p.protobuf(&pb.WatchResponse{
			Header:          r.Header,
			Events:          r.Events,
			CompactRevision: r.CompactRevision,
			Canceled:        r.Canceled,
			Created:         r.Created,
		})
	default:
		return p.unsupported()
	}
	return nil
}
