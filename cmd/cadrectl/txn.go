package main

import (
	"bufio"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	clientv3 "go.etcd.io/etcd/client/v3"
)

func (a *app) newTxnCommand() *cobra.Command {
	var interactive bool
	cmd := &cobra.Command{
		Use:   "txn [options]",
		Short: "Txn processes all the requests in one transaction",
		Long: `Txn reads multiple requests from standard input and applies them as a single atomic transaction.

A transaction consists of three components, each ended by an empty line:
1) a list of conditions,
2) a list of requests to apply if all the conditions are true,
3) a list of requests to apply if any condition is false.

Example:

cadrectl txn -i
# compares:
mod("key1") > "0"

# success requests (get, put, del):
put key1 "overwrote-key1"

# failure requests (get, put, del):
put key1 "created-key1"
put key2 "some extra key"

Conditions are ver|version, c|create, m|mod, val|value or lease of a %q-quoted key,
compared with =, !=, < or > to a %q-quoted value.`,
		GroupID: groupKV,
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.txn(cmd, interactive, args)
		},
	}
	cmd.Flags().BoolVarP(&interactive, "interactive", "i", false, "Input transaction in interactive mode")
	return cmd
}

func (a *app) txn(cmd *cobra.Command, interactive bool, args []string) error {
	if len(args) != 0 {
		return exitf(exitBadArgs, "txn command does not accept argument")
	}
	cli, p, err := a.connect(cmd)
	if err != nil {
		return err
	}
	defer cli.Close()

	prompt := func(s string) {
		if interactive {
			fmt.Fprintln(a.out, s)
		}
	}
	r := bufio.NewReader(a.in)
	prompt("compares:")
	cmps, err := readCompares(r)
	if err != nil {
		return err
	}
	prompt("success requests (get, put, del):")
	thenOps, err := readOps(r, a.errOut)
	if err != nil {
		return err
	}
	prompt("failure requests (get, put, del):")
	elseOps, err := readOps(r, a.errOut)
	if err != nil {
		return err
	}

	// Unlike etcdctl, which waits forever, the commit is bounded by
	// --command-timeout like every other request.
	ctx, cancel := a.commandContext(cmd)
	resp, err := cli.Txn(ctx).If(cmps...).Then(thenOps...).Else(elseOps...).Commit()
	cancel()
	if err != nil {
		return requestFailed(err)
	}
	return p.txn(resp)
}

// readSection returns the trimmed lines up to the next empty line. Running
// out of input before that empty line is an error (etcdctl: "Error: EOF").
func readSection(r *bufio.Reader, each func(string) error) error {
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return exitWith(exitInvalidInput, err)
		}
		line = strings.TrimSpace(line)
		if line == "" {
			return nil
		}
		if err := each(line); err != nil {
			return err
		}
	}
}

func readCompares(r *bufio.Reader) ([]clientv3.Cmp, error) {
	var cmps []clientv3.Cmp
	err := readSection(r, func(line string) error {
		cmp, err := parseCompare(line)
		if err != nil {
			return exitWith(exitInvalidInput, err)
		}
		cmps = append(cmps, cmp)
		return nil
	})
	return cmps, err
}

func readOps(r *bufio.Reader, warnOut io.Writer) ([]clientv3.Op, error) {
	var ops []clientv3.Op
	err := readSection(r, func(line string) error {
		op, err := parseOp(line, warnOut)
		if err != nil {
			return err
		}
		ops = append(ops, op)
		return nil
	})
	return ops, err
}

// parseCompare parses one condition line: target("key") op "value".
func parseCompare(line string) (clientv3.Cmp, error) {
	target, rest, ok := strings.Cut(line, "(")
	if !ok {
		return clientv3.Cmp{}, fmt.Errorf("malformed comparison: %s", line)
	}
	var key, op, val string
	n, serr := fmt.Sscanf(rest, "%q) %s %q", &key, &op, &val)
	if n != 3 {
		return clientv3.Cmp{}, fmt.Errorf("malformed comparison: %s; got %s(%q) %s %q", line, target, key, op, val)
	}
	if serr != nil {
		return clientv3.Cmp{}, fmt.Errorf("malformed comparison: %s (%w)", line, serr)
	}
	switch op {
	case "=", "!=", "<", ">":
	default:
		// clientv3.Compare panics on other operators; say what is allowed.
		return clientv3.Cmp{}, fmt.Errorf("malformed comparison: %s (unknown operator %s, expected =, !=, < or >)", line, op)
	}

	var cmp clientv3.Cmp
	switch target {
	case "ver", "version":
		cmp = clientv3.Version(key)
	case "c", "create":
		cmp = clientv3.CreateRevision(key)
	case "m", "mod":
		cmp = clientv3.ModRevision(key)
	case "lease":
		cmp = clientv3.LeaseValue(key)
	case "val", "value":
		return clientv3.Compare(clientv3.Value(key), op, val), nil
	default:
		return clientv3.Cmp{}, fmt.Errorf("malformed comparison: %s (unknown target %s)", line, target)
	}
	v, err := strconv.ParseInt(val, 10, 64)
	if err != nil {
		return clientv3.Cmp{}, fmt.Errorf("invalid txn compare request: %s", line)
	}
	if target == "lease" {
		// A LeaseID, not a plain int64: clientv3 only accepts that for leases.
		return clientv3.Compare(cmp, op, clientv3.LeaseID(v)), nil
	}
	return clientv3.Compare(cmp, op, v), nil
}

// parseOp parses one request line with the flags of the put, get and del
// commands (abbreviations such as "g" work as on the command line).
func parseOp(line string, warnOut io.Writer) (clientv3.Op, error) {
	args, err := splitArgs(line)
	if err != nil {
		return clientv3.Op{}, exitWith(exitInvalidInput, err)
	}
	if len(args) < 2 {
		return clientv3.Op{}, exitf(exitInvalidInput, "invalid txn compare request: %s", line)
	}

	var (
		op    *clientv3.Op
		opErr error
	)
	var po putOptions
	put := &cobra.Command{Use: "put", RunE: func(_ *cobra.Command, args []string) error {
		key, value, opts, err := po.op(args, nil)
		opErr = err
		if err == nil {
			op = new(clientv3.OpPut(key, value, opts...))
		}
		return nil
	}}
	po.register(put.Flags())
	var gto getOptions
	get := &cobra.Command{Use: "get", RunE: func(_ *cobra.Command, args []string) error {
		key, opts, err := gto.op(args)
		opErr = err
		if err == nil {
			op = new(clientv3.OpGet(key, opts...))
		}
		return nil
	}}
	gto.register(get.Flags())
	var do delOptions
	del := &cobra.Command{Use: "del", RunE: func(_ *cobra.Command, args []string) error {
		key, opts, err := do.op(args, warnOut)
		opErr = err
		if err == nil {
			op = new(clientv3.OpDelete(key, opts...))
		}
		return nil
	}}
	do.register(del.Flags())

	root := &cobra.Command{Use: "txn-request", SilenceErrors: true, SilenceUsage: true}
	root.CompletionOptions.DisableDefaultCmd = true
	root.SetOut(io.Discard)
	root.SetErr(io.Discard)
	root.AddCommand(put, get, del)
	root.SetArgs(args)
	if err := root.Execute(); err != nil {
		return clientv3.Op{}, exitf(exitInvalidInput, "invalid txn request: %s", line)
	}
	if opErr != nil {
		// Argument errors keep the exit code the command itself uses.
		return clientv3.Op{}, opErr
	}
	if op == nil { // e.g. "get --help": nothing to send
		return clientv3.Op{}, exitf(exitInvalidInput, "invalid txn request: %s", line)
	}
	return *op, nil
}

// argPattern is etcdctl's tokenizer for txn request lines: a "Go-quoted"
// string, a 'raw' string, or a run of non-space characters.
var argPattern = regexp.MustCompile(`"(?:[^"\\]|\\.)*"|'[^']*'|[^'"\s]\S*[^'"\s]?`)

// splitArgs splits a request line into arguments, unquoting quoted ones.
func splitArgs(line string) ([]string, error) {
	args := argPattern.FindAllString(line, -1)
	for i, s := range args {
		switch s[0] {
		case '\'':
			args[i] = s[1 : len(s)-1]
		case '"':
			u, err := strconv.Unquote(s)
			if err != nil {
				return nil, fmt.Errorf("bad quoted argument %s: %w", s, err)
			}
			args[i] = u
		}
	}
	return args, nil
}

func (p *printer) txn(r *clientv3.TxnResponse) error {
	resp := (*pb.TxnResponse)(r)
	switch p.format {
	case formatSimple:
		if resp.GetSucceeded() {
			fmt.Fprintln(p.out, "SUCCESS")
		} else {
			fmt.Fprintln(p.out, "FAILURE")
		}
		for _, op := range resp.GetResponses() {
			fmt.Fprintln(p.out)
			if err := p.txnOp(op); err != nil {
				return err
			}
		}
		return nil
	case formatFields:
		p.fieldsHeader(resp.GetHeader())
		fmt.Fprintf(p.out, "\"Succeeded\" : %v\n", resp.GetSucceeded())
		for _, op := range resp.GetResponses() {
			if err := p.txnOp(op); err != nil {
				return err
			}
		}
		return nil
	case formatJSON:
		p.json(txnToJSON(resp))
		return nil
	}
	return p.message(resp)
}

// txnOp prints one response of a transaction the way the standalone
// command would.
func (p *printer) txnOp(op *pb.ResponseOp) error {
	switch v := op.GetResponse().(type) {
	case *pb.ResponseOp_ResponseDeleteRange:
		return p.del((*clientv3.DeleteResponse)(v.ResponseDeleteRange))
	case *pb.ResponseOp_ResponsePut:
		return p.put((*clientv3.PutResponse)(v.ResponsePut))
	case *pb.ResponseOp_ResponseRange:
		return p.get((*clientv3.GetResponse)(v.ResponseRange))
	}
	if p.format == formatFields {
		fmt.Fprintf(p.out, "\"Unknown\" : %q\n", fmt.Sprintf("%+v", op.GetResponse()))
	} else {
		fmt.Fprintf(p.out, "unexpected response %+v\n", op)
	}
	return nil
}

// txnJSON is the JSON shape etcdctl prints for a transaction: the oneof of
// each response becomes an object under "Response".
type txnJSON struct {
	Header    *pb.ResponseHeader `json:"header,omitempty"`
	Succeeded bool               `json:"succeeded,omitempty"`
	Responses []txnOpJSON        `json:"responses,omitempty"`
}

type txnOpJSON struct {
	Response txnOpResponseJSON `json:"Response"`
}

type txnOpResponseJSON struct {
	ResponseRange       *pb.RangeResponse       `json:"response_range,omitempty"`
	ResponsePut         *pb.PutResponse         `json:"response_put,omitempty"`
	ResponseDeleteRange *pb.DeleteRangeResponse `json:"response_delete_range,omitempty"`
	ResponseTxn         *txnJSON                `json:"response_txn,omitempty"`
}

func txnToJSON(resp *pb.TxnResponse) txnJSON {
	out := txnJSON{Header: resp.GetHeader(), Succeeded: resp.GetSucceeded()}
	for _, op := range resp.GetResponses() {
		var r txnOpResponseJSON
		switch v := op.GetResponse().(type) {
		case *pb.ResponseOp_ResponseRange:
			r.ResponseRange = v.ResponseRange
		case *pb.ResponseOp_ResponsePut:
			r.ResponsePut = v.ResponsePut
		case *pb.ResponseOp_ResponseDeleteRange:
			r.ResponseDeleteRange = v.ResponseDeleteRange
		case *pb.ResponseOp_ResponseTxn:
			nested := txnToJSON(v.ResponseTxn)
			r.ResponseTxn = &nested
		}
		out.Responses = append(out.Responses, txnOpJSON{Response: r})
	}
	return out
}
