package main

import (
	"fmt"
	"strconv"

	"github.com/spf13/cobra"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	clientv3 "go.etcd.io/etcd/client/v3"
)

func (a *app) newLeaseCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:     "lease <subcommand>",
		Short:   "Lease related commands. Use `cadrectl lease --help` to see subcommands",
		Long:    "Lease related commands",
		GroupID: groupKV,
	}
	var keys, once bool
	ttl := &cobra.Command{
		Use:   "timetolive <leaseID> [options]",
		Short: "Get lease information",
		RunE:  func(cmd *cobra.Command, args []string) error { return a.leaseTimeToLive(cmd, keys, args) },
	}
	ttl.Flags().BoolVar(&keys, "keys", false, "Get keys attached to this lease")
	keepAlive := &cobra.Command{
		Use:   "keep-alive [options] <leaseID>",
		Short: "Keeps leases alive (renew)",
		RunE:  func(cmd *cobra.Command, args []string) error { return a.leaseKeepAlive(cmd, once, args) },
	}
	keepAlive.Flags().BoolVar(&once, "once", false, "Resets the keep-alive time to its original value and exits immediately")
	cmd.AddCommand(
		&cobra.Command{Use: "grant <ttl>", Short: "Creates leases", RunE: a.leaseGrant},
		&cobra.Command{Use: "revoke <leaseID>", Short: "Revokes leases", RunE: a.leaseRevoke},
		ttl,
		&cobra.Command{Use: "list", Short: "List all active leases", RunE: a.leaseList},
		keepAlive,
	)
	return cmd
}

func (a *app) leaseGrant(cmd *cobra.Command, args []string) error {
	if len(args) != 1 {
		return exitf(exitBadArgs, "lease grant command needs TTL argument")
	}
	ttl, err := strconv.ParseInt(args[0], 10, 64)
	if err != nil {
		return exitf(exitBadArgs, "bad TTL (%w)", err)
	}
	cli, p, err := a.connect(cmd)
	if err != nil {
		return err
	}
	defer cli.Close()
	ctx, cancel := a.commandContext(cmd)
	resp, err := cli.Grant(ctx, ttl)
	cancel()
	if err != nil {
		return exitf(exitFailure, "failed to grant lease (%w)", err)
	}
	return p.leaseGrant(resp)
}

func (a *app) leaseRevoke(cmd *cobra.Command, args []string) error {
	if len(args) != 1 {
		return exitf(exitBadArgs, "lease revoke command needs 1 argument")
	}
	id, err := parseLeaseID(args[0])
	if err != nil {
		return err
	}
	cli, p, err := a.connect(cmd)
	if err != nil {
		return err
	}
	defer cli.Close()
	ctx, cancel := a.commandContext(cmd)
	resp, err := cli.Revoke(ctx, id)
	cancel()
	if err != nil {
		return exitf(exitFailure, "failed to revoke lease (%w)", err)
	}
	return p.leaseRevoke(id, resp)
}

// leaseTimeToLive, leaseList and keep-alive end with exit code 2 when the
// request fails, as etcdctl does.
func (a *app) leaseTimeToLive(cmd *cobra.Command, keys bool, args []string) error {
	if len(args) != 1 {
		return exitf(exitBadArgs, "lease timetolive command needs lease ID as argument")
	}
	id, err := parseLeaseID(args[0])
	if err != nil {
		return err
	}
	var opts []clientv3.LeaseOption
	if keys {
		opts = append(opts, clientv3.WithAttachedKeys())
	}
	cli, p, err := a.connect(cmd)
	if err != nil {
		return err
	}
	defer cli.Close()
	// etcdctl waits forever here; the command timeout is kinder.
	ctx, cancel := a.commandContext(cmd)
	resp, err := cli.TimeToLive(ctx, id, opts...)
	cancel()
	if err != nil {
		return exitWith(exitBadConnection, err)
	}
	return p.leaseTimeToLive(resp, keys)
}

func (a *app) leaseList(cmd *cobra.Command, _ []string) error {
	cli, p, err := a.connect(cmd)
	if err != nil {
		return err
	}
	defer cli.Close()
	ctx, cancel := a.commandContext(cmd)
	resp, err := cli.Leases(ctx)
	cancel()
	if err != nil {
		return exitWith(exitBadConnection, err)
	}
	return p.leases(resp)
}

func (a *app) leaseKeepAlive(cmd *cobra.Command, once bool, args []string) error {
	if len(args) != 1 {
		return exitf(exitBadArgs, "lease keep-alive command needs lease ID as argument")
	}
	id, err := parseLeaseID(args[0])
	if err != nil {
		return err
	}
	cli, p, err := a.connect(cmd)
	if err != nil {
		return err
	}
	defer cli.Close()
	if once {
		ctx, cancel := a.commandContext(cmd)
		resp, err := cli.KeepAliveOnce(ctx, id)
		cancel()
		if err != nil {
			return exitWith(exitBadConnection, err)
		}
		return p.leaseKeepAlive(resp)
	}
	ctx := cmd.Context()
	respc, err := cli.KeepAlive(ctx, id)
	if err != nil {
		return exitWith(exitBadConnection, err)
	}
	for resp := range respc {
		if err := p.leaseKeepAlive(resp); err != nil {
			return err
		}
	}
	if ctx.Err() != nil {
		// Interrupted (in-process only: the real process dies of the
		// signal, as etcdctl does); the lease may well be alive.
		return &exitError{code: exitInterrupted, err: ctx.Err(), quiet: true}
	}
	if p.format == formatSimple {
		fmt.Fprintf(p.out, "lease %016x expired or revoked.\n", id)
	}
	return nil
}

// parseLeaseID reads a lease ID argument, which is hexadecimal.
func parseLeaseID(s string) (clientv3.LeaseID, error) {
	id, err := strconv.ParseInt(s, 16, 64)
	if err != nil {
		return 0, exitf(exitBadArgs, "bad lease ID arg (%w), expecting ID in Hex", err)
	}
	return clientv3.LeaseID(id), nil
}

// The lease responses of client/v3 embed the response header. etcdctl
// prints them with encoding/json as they are, and its protobuf format
// marshals what that embedding makes a proto.Message: the header alone.
// cadrectl prints the same bytes (p.protobuf(r.ResponseHeader)).

// fieldsLeaseID prints an "ID" line of the fields format.
func (p *printer) fieldsLeaseID(id clientv3.LeaseID) {
	if p.hex {
		fmt.Fprintf(p.out, "\"ID\" : %016x\n", id)
	} else {
		fmt.Fprintf(p.out, "\"ID\" : %d\n", id)
	}
}

func (p *printer) leaseGrant(r *clientv3.LeaseGrantResponse) error {
	return p.leaseIDTTL(fmt.Sprintf("lease %016x granted with TTL(%ds)\n", r.ID, r.TTL), r.ResponseHeader, r.ID, r.TTL, r)
}

// leaseIDTTL prints a response made of a header, a lease ID and a TTL
// (grant and keep-alive) in every format; simple is the simple line.
func (p *printer) leaseIDTTL(simple string, h *pb.ResponseHeader, id clientv3.LeaseID, ttl int64, r any) error {
	switch p.format {
	case formatSimple:
		fmt.Fprint(p.out, simple)
	case formatFields:
		p.fieldsHeader(h)
		p.fieldsLeaseID(id)
		fmt.Fprintf(p.out, "\"TTL\" : %d\n", ttl)
	case formatJSON:
		p.json(r)
	case formatProtobuf:
		return p.protobuf(h)
	default:
		return p.unsupported()
	}
	return nil
}

func (p *printer) leaseRevoke(id clientv3.LeaseID, r *clientv3.LeaseRevokeResponse) error {
	switch p.format {
	case formatSimple:
		fmt.Fprintf(p.out, "lease %016x revoked\n", id)
	case formatFields:
		p.fieldsHeader(r.Header)
	case formatJSON:
		p.json(r)
	case formatProtobuf:
		// client/v3's revoke response is not a proto.Message; etcdctl
		// refuses it with this message.
		return exitf(exitBadFeature, "marshal unsupported for type %T (%v)", r, r)
	default:
		return p.unsupported()
	}
	return nil
}

func (p *printer) leaseKeepAlive(r *clientv3.LeaseKeepAliveResponse) error {
	return p.leaseIDTTL(fmt.Sprintf("lease %016x keepalived with TTL(%d)\n", r.ID, r.TTL), r.ResponseHeader, r.ID, r.TTL, r)
}

func (p *printer) leaseTimeToLive(r *clientv3.LeaseTimeToLiveResponse, keys bool) error {
	switch p.format {
	case formatSimple:
		if r.GrantedTTL == 0 && r.TTL == -1 {
			fmt.Fprintf(p.out, "lease %016x already expired\n", r.ID)
			return nil
		}
		txt := fmt.Sprintf("lease %016x granted with TTL(%ds), remaining(%ds)", r.ID, r.GrantedTTL, r.TTL)
		if keys {
			ks := make([]string, len(r.Keys))
			for i, k := range r.Keys {
				ks[i] = string(k)
			}
			txt += fmt.Sprintf(", attached keys(%v)", ks)
		}
		fmt.Fprintln(p.out, txt)
	case formatFields:
		p.fieldsHeader(r.ResponseHeader)
		p.fieldsLeaseID(r.ID)
		fmt.Fprintf(p.out, "\"TTL\" : %d\n", r.TTL)
		fmt.Fprintf(p.out, "\"GrantedTTL\" : %d\n", r.GrantedTTL)
		for _, k := range r.Keys {
			fmt.Fprintf(p.out, "\"Key\" : %q\n", string(k))
		}
	case formatJSON:
		p.json(r)
	case formatProtobuf:
		return p.protobuf(r.ResponseHeader)
	default:
		return p.unsupported()
	}
	return nil
}

func (p *printer) leases(r *clientv3.LeaseLeasesResponse) error {
	switch p.format {
	case formatSimple:
		fmt.Fprintf(p.out, "found %d leases\n", len(r.Leases))
		for _, l := range r.Leases {
			fmt.Fprintf(p.out, "%016x\n", l.ID)
		}
	case formatFields:
		p.fieldsHeader(r.ResponseHeader)
		for _, l := range r.Leases {
			p.fieldsLeaseID(l.ID)
		}
	case formatJSON:
		p.json(r)
	case formatProtobuf:
		return p.protobuf(r.ResponseHeader)
	default:
		return p.unsupported()
	}
	return nil
}
