package main

import (
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// rangeDeleteGrace is how long del waits before deleting an explicit
// [key, range_end) without --range, so a mistyped range can be interrupted.
const rangeDeleteGrace = 2 * time.Second

// delOptions are del's flags; txn parses its "del" lines with the same set.
type delOptions struct {
	prefix  bool
	prevKV  bool
	fromKey bool
	isRange bool
}

func (o *delOptions) register(fs *pflag.FlagSet) {
	fs.BoolVar(&o.prefix, "prefix", false, "delete keys with matching prefix")
	fs.BoolVar(&o.prevKV, "prev-kv", false, "return deleted key-value pairs")
	fs.BoolVar(&o.fromKey, "from-key", false, "delete keys that are greater than or equal to the given key using byte compare")
	fs.BoolVar(&o.isRange, "range", false, "delete range of keys")
}

func (a *app) newDelCommand() *cobra.Command {
	var o delOptions
	cmd := &cobra.Command{
		Use:     "del [options] <key> [range_end]",
		Short:   "Removes the specified key or range of keys [key, range_end)",
		GroupID: groupKV,
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.del(cmd, &o, args)
		},
	}
	o.register(cmd.Flags())
	return cmd
}

func (a *app) del(cmd *cobra.Command, o *delOptions, args []string) error {
	key, opts, err := o.op(args, a.errOut)
	if err != nil {
		return err
	}
	cli, p, err := a.connect(cmd)
	if err != nil {
		return err
	}
	defer cli.Close()
	ctx, cancel := a.commandContext(cmd)
	resp, err := cli.Delete(ctx, key, opts...)
	cancel()
	if err != nil {
		return requestFailed(err)
	}
	return p.del(resp)
}

// op validates del's arguments and builds the request options. An explicit
// range without --range prints a warning to warnOut and waits
// rangeDeleteGrace first.
func (o *delOptions) op(args []string, warnOut io.Writer) (string, []clientv3.OpOption, error) {
	if len(args) == 0 || len(args) > 2 {
		return "", nil, exitf(exitBadArgs, "del command needs one argument as key and an optional argument as range_end")
	}
	if o.prefix && o.fromKey {
		return "", nil, exitf(exitBadArgs, "`--prefix` and `--from-key` cannot be set at the same time, choose one")
	}
	var opts []clientv3.OpOption
	key := args[0]
	if len(args) > 1 {
		if o.prefix || o.fromKey {
			return "", nil, exitf(exitBadArgs, "too many arguments, only accept one argument when `--prefix` or `--from-key` is set")
		}
		opts = append(opts, clientv3.WithRange(args[1]))
		if !o.isRange {
			fmt.Fprintf(warnOut, "Warning: Keys between %q and %q will be deleted. Please interrupt the command within next 2 seconds to cancel. "+
				"You can provide `--range` flag to avoid the delay.\n", args[0], args[1])
			time.Sleep(rangeDeleteGrace)
		}
	}
	if o.prevKV {
		opts = append(opts, clientv3.WithPrevKV())
	}
	key, opts = rangeOpts(key, o.prefix, o.fromKey, opts)
	return key, opts, nil
}

func (p *printer) del(r *clientv3.DeleteResponse) error {
	resp := (*pb.DeleteRangeResponse)(r)
	switch p.format {
	case formatSimple:
		fmt.Fprintln(p.out, resp.GetDeleted())
		for _, kv := range resp.GetPrevKvs() {
			p.simpleKV(kv)
		}
		return nil
	case formatFields:
		p.fieldsHeader(resp.GetHeader())
		fmt.Fprintf(p.out, "\"Deleted\" : %d\n", resp.GetDeleted())
		for _, kv := range resp.GetPrevKvs() {
			p.fieldsKV("Prev", kv)
		}
		return nil
	}
	return p.message(resp)
}
