package main

import (
	"errors"
	"fmt"
	"io"
	"strconv"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// putOptions are put's flags; txn parses its "put" lines with the same set.
type putOptions struct {
	lease       string
	prevKV      bool
	ignoreValue bool
	ignoreLease bool
}

func (o *putOptions) register(fs *pflag.FlagSet) {
	fs.StringVar(&o.lease, "lease", "0", "lease ID (in hexadecimal) to attach to the key")
	fs.BoolVar(&o.prevKV, "prev-kv", false, "return the previous key-value pair before modification")
	fs.BoolVar(&o.ignoreValue, "ignore-value", false, "updates the key using its current value")
	fs.BoolVar(&o.ignoreLease, "ignore-lease", false, "updates the key using its current lease")
}

func (a *app) newPutCommand() *cobra.Command {
	var o putOptions
	cmd := &cobra.Command{
		Use:   "put [options] <key> <value> (<value> can also be given from stdin)",
		Short: "Puts the given key into the store",
		Long: `
Puts the given key into the store.

When <value> begins with '-', <value> is interpreted as a flag.
Insert '--' for workaround:

$ put <key> -- <value>
$ put -- <key> <value>

If <value> isn't given as a command line argument and '--ignore-value' is not specified,
this command tries to read the value from standard input.

For example,
$ cat file | put <key>
will store the content of the file to <key>.
`,
		GroupID: groupKV,
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.put(cmd, &o, args)
		},
	}
	o.register(cmd.Flags())
	return cmd
}

func (a *app) put(cmd *cobra.Command, o *putOptions, args []string) error {
	key, value, opts, err := o.op(args, a.in)
	if err != nil {
		return err
	}
	cli, p, err := a.connect(cmd)
	if err != nil {
		return err
	}
	defer cli.Close()
	ctx, cancel := a.commandContext(cmd)
	resp, err := cli.Put(ctx, key, value, opts...)
	cancel()
	if err != nil {
		return requestFailed(err)
	}
	return p.put(resp)
}

var errPutArgs = errors.New("put command needs 1 argument and input from stdin or 2 arguments")

// op turns put's arguments into the request. The value is read from stdin
// when it is not the second argument.
func (o *putOptions) op(args []string, stdin io.Reader) (key, value string, opts []clientv3.OpOption, err error) {
	if len(args) == 0 {
		return "", "", nil, exitWith(exitBadArgs, errPutArgs)
	}
	key = args[0]
	if o.ignoreValue && len(args) > 1 {
		return "", "", nil, exitf(exitBadArgs, "put command needs only 1 argument when 'ignore-value' is set")
	}
	if !o.ignoreValue {
		if value, err = argOrStdin(args, 1, stdin); err != nil {
			return "", "", nil, exitWith(exitBadArgs, errPutArgs)
		}
	}
	id, err := strconv.ParseInt(o.lease, 16, 64)
	if err != nil {
		return "", "", nil, exitf(exitBadArgs, "bad lease ID (%w), expecting ID in Hex", err)
	}
	if id != 0 {
		opts = append(opts, clientv3.WithLease(clientv3.LeaseID(id)))
	}
	if o.prevKV {
		opts = append(opts, clientv3.WithPrevKV())
	}
	if o.ignoreValue {
		opts = append(opts, clientv3.WithIgnoreValue())
	}
	if o.ignoreLease {
		opts = append(opts, clientv3.WithIgnoreLease())
	}
	return key, value, opts, nil
}

// argOrStdin returns args[i], or all of stdin when there is no such
// argument. Empty stdin is an error.
func argOrStdin(args []string, i int, stdin io.Reader) (string, error) {
	if i < len(args) {
		return args[i], nil
	}
	if stdin == nil {
		return "", errors.New("no available argument and stdin")
	}
	b, err := io.ReadAll(stdin)
	if err != nil || len(b) == 0 {
		return "", errors.New("no available argument and stdin")
	}
	return string(b), nil
}

func (p *printer) put(r *clientv3.PutResponse) error {
	resp := (*pb.PutResponse)(r)
	switch p.format {
	case formatSimple:
		fmt.Fprintln(p.out, "OK")
		if resp.GetPrevKv() != nil {
			p.simpleKV(resp.GetPrevKv())
		}
		return nil
	case formatFields:
		p.fieldsHeader(resp.GetHeader())
		if resp.GetPrevKv() != nil {
			p.fieldsKV("Prev", resp.GetPrevKv())
		}
		return nil
	}
	return p.message(resp)
}
