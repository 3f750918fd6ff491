package main

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// endpoint hashkv: the KV history hash of each endpoint, as etcdctl prints
// it. Members that agree hold the same hash at the same hash revision; a
// member that differs is the one to investigate (see `cadrectl alarm list`
// for CORRUPT).
func (a *app) newEndpointHashKVCommand(cluster *bool) *cobra.Command {
	var rev int64
	cmd := &cobra.Command{
		Use:   "hashkv",
		Short: "Prints the KV history hash for each endpoint in --endpoints",
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.endpointHashKV(cmd, *cluster, rev)
		},
	}
	cmd.Flags().Int64Var(&rev, "rev", 0, "maximum revision to hash (default: latest revision)")
	return cmd
}

// endpointHashKVResult is one endpoint's hash; the JSON names are etcdctl's.
type endpointHashKVResult struct {
	Endpoint string                   `json:"Endpoint"`
	HashKV   *clientv3.HashKVResponse `json:"HashKV"`
}

func (a *app) endpointHashKV(cmd *cobra.Command, cluster bool, rev int64) error {
	p, err := a.newPrinter()
	if err != nil {
		return err
	}
	var list []endpointHashKVResult
	failed, err := a.forEachEndpoint(cmd, cluster, func(ctx context.Context, cli *clientv3.Client, ep string) error {
		resp, err := cli.HashKV(ctx, ep, rev)
		if err != nil {
			// etcdctl reports each failure, prints what it got, then ends
			// with the last error.
			fmt.Fprintf(a.errOut, "Failed to get the hash of endpoint %s (%v)\n", ep, err)
			return err
		}
		list = append(list, endpointHashKVResult{Endpoint: ep, HashKV: resp})
		return nil
	})
	if err != nil {
		return err
	}
	if err := p.endpointHashKV(list); err != nil {
		return err
	}
	if failed != nil {
		return requestFailed(failed)
	}
	return nil
}

func (p *printer) endpointHashKV(list []endpointHashKVResult) error {
	switch p.format {
	case formatSimple:
		for _, h := range list {
			fmt.Fprintf(p.out, "%s, %d, %d\n", h.Endpoint, h.HashKV.Hash, h.HashKV.HashRevision)
		}
	case formatTable:
		rows := make([][]string, 0, len(list))
		for _, h := range list {
			rows = append(rows, []string{h.Endpoint, fmt.Sprint(h.HashKV.Hash), fmt.Sprint(h.HashKV.HashRevision)})
		}
		p.table([]string{"endpoint", "hash", "hash revision"}, rows)
	case formatFields:
		for _, h := range list {
			r := (*pb.HashKVResponse)(h.HashKV)
			p.fieldsHeader(r.GetHeader())
			fmt.Fprintf(p.out, "\"Endpoint\" : %q\n", h.Endpoint)
			fmt.Fprintln(p.out, `"Hash" :`, r.GetHash())
			fmt.Fprintln(p.out, `"HashRevision" :`, r.GetHashRevision())
			fmt.Fprintln(p.out)
		}
	case formatJSON:
		p.json(list)
	default:
		return p.unsupported()
	}
	return nil
}
