package main

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// getOptions are get's flags; txn parses its "get" lines with the same set.
type getOptions struct {
	consistency    string
	order          string
	sortBy         string
	limit          int64
	prefix         bool
	fromKey        bool
	rev            int64
	keysOnly       bool
	countOnly      bool
	printValueOnly bool
	minCreateRev   int64
	maxCreateRev   int64
	minModRev      int64
	maxModRev      int64
	stream         bool
}

func (o *getOptions) register(fs *pflag.FlagSet) {
	fs.StringVar(&o.consistency, "consistency", "l", "Linearizable(l) or Serializable(s)")
	fs.StringVar(&o.order, "order", "", "Order of results; ASCEND or DESCEND (ASCEND by default)")
	fs.StringVar(&o.sortBy, "sort-by", "", "Sort target; CREATE, KEY, MODIFY, VALUE, or VERSION")
	fs.Int64Var(&o.limit, "limit", 0, "Maximum number of results")
	fs.BoolVar(&o.prefix, "prefix", false, "Get keys with matching prefix")
	fs.BoolVar(&o.fromKey, "from-key", false, "Get keys that are greater than or equal to the given key using byte compare")
	fs.Int64Var(&o.rev, "rev", 0, "Specify the kv revision")
	fs.BoolVar(&o.keysOnly, "keys-only", false, "Get only the keys")
	fs.BoolVar(&o.countOnly, "count-only", false, "Get only the count")
	fs.BoolVar(&o.printValueOnly, "print-value-only", false, `Only write values when using the "simple" output format`)
	fs.Int64Var(&o.minCreateRev, "min-create-rev", 0, "Minimum create revision")
	fs.Int64Var(&o.maxCreateRev, "max-create-rev", 0, "Maximum create revision")
	fs.Int64Var(&o.minModRev, "min-mod-rev", 0, "Minimum modification revision")
	fs.Int64Var(&o.maxModRev, "max-mod-rev", 0, "Maximum modification revision")
	fs.BoolVar(&o.stream, "stream", false, "Use the RangeStream RPC")
}

func (a *app) newGetCommand() *cobra.Command {
	var o getOptions
	cmd := &cobra.Command{
		Use:     "get [options] <key> [range_end]",
		Short:   "Gets the key or a range of keys",
		GroupID: groupKV,
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.get(cmd, &o, args)
		},
	}
	o.register(cmd.Flags())
	return cmd
}

func (a *app) get(cmd *cobra.Command, o *getOptions, args []string) error {
	key, opts, err := o.op(args)
	if err != nil {
		return err
	}
	cli, p, err := a.connect(cmd)
	if err != nil {
		return err
	}
	defer cli.Close()
	ctx, cancel := a.commandContext(cmd)
	var resp *clientv3.GetResponse
	if o.stream {
		var ch clientv3.GetStreamChan
		if ch, err = cli.GetStream(ctx, key, opts...); err == nil {
			resp, err = clientv3.GetStreamToGetResponse(ch)
		}
	} else {
		resp, err = cli.Get(ctx, key, opts...)
	}
	cancel()
	if err != nil {
		return requestFailed(err)
	}
	// These two are checked after the request, as etcdctl does.
	if o.countOnly && p.format != formatFields {
		return exitf(exitBadArgs, "--count-only is only for `--write-out=fields`")
	}
	if o.printValueOnly {
		if p.format != formatSimple {
			return exitf(exitBadArgs, "print-value-only is only for `--write-out=simple`")
		}
		p.valueOnly = true
	}
	return p.get(resp)
}

// op validates get's arguments and flags, in etcdctl's order, and builds the
// request options.
func (o *getOptions) op(args []string) (string, []clientv3.OpOption, error) {
	if len(args) == 0 {
		return "", nil, exitf(exitBadArgs, "get command needs one argument as key and an optional argument as range_end")
	}
	if o.prefix && o.fromKey {
		return "", nil, exitf(exitBadArgs, "`--prefix` and `--from-key` cannot be set at the same time, choose one")
	}
	if o.keysOnly && o.countOnly {
		return "", nil, exitf(exitBadArgs, "`--keys-only` and `--count-only` cannot be set at the same time, choose one")
	}
	var opts []clientv3.OpOption
	serializable, err := parseConsistency(o.consistency)
	if err != nil {
		return "", nil, err
	}
	if serializable {
		opts = append(opts, clientv3.WithSerializable())
	}
	key := args[0]
	if len(args) > 1 {
		if o.prefix || o.fromKey {
			return "", nil, exitf(exitBadArgs, "too many arguments, only accept one argument when `--prefix` or `--from-key` is set")
		}
		opts = append(opts, clientv3.WithRange(args[1]))
	}
	opts = append(opts, clientv3.WithLimit(o.limit))
	if o.rev > 0 {
		opts = append(opts, clientv3.WithRev(o.rev))
	}

	order := clientv3.SortNone
	switch strings.ToUpper(o.order) {
	case "ASCEND":
		order = clientv3.SortAscend
	case "DESCEND":
		order = clientv3.SortDescend
	case "":
	default:
		return "", nil, exitf(exitBadFeature, "bad sort order %v", o.order)
	}
	target := clientv3.SortByKey
	switch strings.ToUpper(o.sortBy) {
	case "CREATE":
		target = clientv3.SortByCreateRevision
	case "KEY", "":
		target = clientv3.SortByKey
	case "MODIFY":
		target = clientv3.SortByModRevision
	case "VALUE":
		target = clientv3.SortByValue
	case "VERSION":
		target = clientv3.SortByVersion
	default:
		return "", nil, exitf(exitBadFeature, "bad sort target %v", o.sortBy)
	}
	opts = append(opts, clientv3.WithSort(target, order))

	key, opts = rangeOpts(key, o.prefix, o.fromKey, opts)
	if o.keysOnly {
		opts = append(opts, clientv3.WithKeysOnly())
	}
	if o.countOnly {
		opts = append(opts, clientv3.WithCountOnly())
	}
	if o.minCreateRev > 0 {
		opts = append(opts, clientv3.WithMinCreateRev(o.minCreateRev))
	}
	if o.maxCreateRev > 0 {
		if o.minCreateRev > o.maxCreateRev {
			return "", nil, exitf(exitBadFeature, "getMinCreateRev(=%v) > getMaxCreateRev(=%v)", o.minCreateRev, o.maxCreateRev)
		}
		opts = append(opts, clientv3.WithMaxCreateRev(o.maxCreateRev))
	}
	if o.minModRev > 0 {
		opts = append(opts, clientv3.WithMinModRev(o.minModRev))
	}
	if o.maxModRev > 0 {
		if o.minModRev > o.maxModRev {
			return "", nil, exitf(exitBadFeature, "getMinModRev(=%v) > getMaxModRev(=%v)", o.minModRev, o.maxModRev)
		}
		opts = append(opts, clientv3.WithMaxModRev(o.maxModRev))
	}
	return key, opts, nil
}

// rangeOpts applies --prefix / --from-key. An empty key with either means
// "every key", which etcd spells as from-key "\x00".
func rangeOpts(key string, prefix, fromKey bool, opts []clientv3.OpOption) (string, []clientv3.OpOption) {
	switch {
	case (prefix || fromKey) && key == "":
		return "\x00", append(opts, clientv3.WithFromKey())
	case prefix:
		return key, append(opts, clientv3.WithPrefix())
	case fromKey:
		return key, append(opts, clientv3.WithFromKey())
	}
	return key, opts
}

func (p *printer) get(r *clientv3.GetResponse) error {
	resp := (*pb.RangeResponse)(r)
	switch p.format {
	case formatSimple:
		for _, kv := range resp.GetKvs() {
			p.simpleKV(kv)
		}
		return nil
	case formatFields:
		p.fieldsHeader(resp.GetHeader())
		for _, kv := range resp.GetKvs() {
			p.fieldsKV("", kv)
		}
		fmt.Fprintf(p.out, "\"More\" : %v\n", resp.GetMore())
		fmt.Fprintf(p.out, "\"Count\" : %d\n", resp.GetCount())
		return nil
	}
	return p.message(resp)
}
