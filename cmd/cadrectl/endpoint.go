package main

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
)

func (a *app) newEndpointCommand() *cobra.Command {
	var cluster bool
	cmd := &cobra.Command{
		Use:     "endpoint <subcommand>",
		Short:   "Endpoint related commands. Use `cadrectl endpoint --help` to see subcommands",
		Long:    "Endpoint related commands",
		GroupID: groupCluster,
	}
	cmd.PersistentFlags().BoolVar(&cluster, "cluster", false, "use all endpoints from the cluster member list")
	cmd.AddCommand(
		&cobra.Command{
			Use:   "health",
			Short: "Checks the healthiness of endpoints specified in `--endpoints` flag",
			RunE: func(cmd *cobra.Command, _ []string) error {
				return a.endpointHealth(cmd, cluster)
			},
		},
		&cobra.Command{
			Use:   "status",
			Short: "Prints out the status of endpoints specified in `--endpoints` flag",
			Long: `When --write-out is set to simple, this command prints out comma-separated status lists for each endpoint.
The items in the lists are endpoint, ID, version, db size, is leader, is learner, raft term, raft index, raft applied index, errors.
`,
			RunE: func(cmd *cobra.Command, _ []string) error {
				return a.endpointStatus(cmd, cluster)
			},
		},
		a.newEndpointHashKVCommand(&cluster),
	)
	return cmd
}

// endpoints returns --endpoints, or with --cluster the client URLs of every
// member in the cluster's member list.
func (a *app) endpoints(cmd *cobra.Command, spec *clientv3.ConfigSpec, cluster bool) ([]string, error) {
	if !cluster {
		return a.global.endpoints, nil
	}
	cfg, err := clientConfig(spec)
	if err != nil {
		return nil, exitWith(exitFailure, err)
	}
	cli, err := clientv3.New(*cfg)
	if err != nil {
		return nil, exitWith(exitFailure, err)
	}
	defer cli.Close()
	ctx, cancel := a.commandContext(cmd)
	defer cancel()
	resp, err := cli.MemberList(ctx)
	if err != nil {
		return nil, exitf(exitFailure, "failed to fetch endpoints from etcd cluster member list: %w", err)
	}
	var eps []string
	for _, m := range resp.Members {
		eps = append(eps, m.ClientURLs...)
	}
	return eps, nil
}

// endpointHealthResult is one endpoint's health; the JSON names are
// etcdctl's.
type endpointHealthResult struct {
	Endpoint string `json:"endpoint"`
	Health   bool   `json:"health"`
	Took     string `json:"took"`
	Error    string `json:"error,omitempty"`
}

func (a *app) endpointHealth(cmd *cobra.Command, cluster bool) error {
	spec, err := a.configSpec(cmd)
	if err != nil {
		return err
	}
	p, err := a.newPrinter()
	if err != nil {
		return err
	}
	eps, err := a.endpoints(cmd, spec, cluster)
	if err != nil {
		return err
	}

	cfgs := make([]*clientv3.Config, len(eps))
	for i, ep := range eps {
		one := *spec
		one.Endpoints = []string{ep}
		if cfgs[i], err = clientConfig(&one); err != nil {
			return exitWith(exitBadArgs, err)
		}
	}

	// Every endpoint is checked at once; results are listed in the order
	// they arrive, as etcdctl does.
	var wg sync.WaitGroup
	results := make(chan endpointHealthResult, len(eps))
	for i, ep := range eps {
		wg.Go(func() { results <- a.checkHealth(cmd, cfgs[i], ep) })
	}
	wg.Wait()
	close(results)

	var list []endpointHealthResult
	unhealthy := false
	for h := range results {
		list = append(list, h)
		unhealthy = unhealthy || h.Error != ""
	}
	if err := p.endpointHealth(list); err != nil {
		return err
	}
	if unhealthy {
		return exitf(exitFailure, "unhealthy cluster")
	}
	return nil
}

// checkHealth reads a key through consensus and then checks for alarms: an
// endpoint is healthy when the read succeeds (permission denied counts: the
// request still went through raft) and no alarm is active.
func (a *app) checkHealth(cmd *cobra.Command, cfg *clientv3.Config, ep string) endpointHealthResult {
	cli, err := clientv3.New(*cfg)
	if err != nil {
		return endpointHealthResult{Endpoint: ep, Error: err.Error()}
	}
	defer cli.Close()
	start := time.Now()
	ctx, cancel := a.commandContext(cmd)
	defer cancel()
	_, err = cli.Get(ctx, "health")
	h := endpointHealthResult{Endpoint: ep, Took: time.Since(start).String()}
	if err != nil && !errors.Is(err, rpctypes.ErrPermissionDenied) {
		h.Error = err.Error()
		return h
	}
	alarms, err := cli.AlarmList(ctx)
	if err != nil {
		h.Error = "Unable to fetch the alarm list"
		return h
	}
	if len(alarms.Alarms) > 0 {
		var sb strings.Builder
		sb.WriteString("Active Alarm(s): ")
		for _, al := range alarms.Alarms {
			switch al.Alarm {
			case pb.AlarmType_NOSPACE:
				sb.WriteString("NOSPACE ")
			case pb.AlarmType_CORRUPT:
				sb.WriteString("CORRUPT ")
			default:
				sb.WriteString("UNKNOWN ")
			}
		}
		h.Error = sb.String()
		return h
	}
	h.Health = true
	return h
}

func (p *printer) endpointHealth(list []endpointHealthResult) error {
	switch p.format {
	case formatSimple:
		for _, h := range list {
			if h.Error == "" {
				fmt.Fprintf(p.out, "%s is healthy: successfully committed proposal: took = %v\n", h.Endpoint, h.Took)
			} else {
				fmt.Fprintf(p.errOut, "%s is unhealthy: failed to commit proposal: %v\n", h.Endpoint, h.Error)
			}
		}
	case formatTable:
		rows := make([][]string, 0, len(list))
		for _, h := range list {
			rows = append(rows, []string{h.Endpoint, strconv.FormatBool(h.Health), h.Took, h.Error})
		}
		p.table([]string{"endpoint", "health", "took", "error"}, rows)
	case formatFields:
		for _, h := range list {
			fmt.Fprintf(p.out, "\"Endpoint\" : %q\n", h.Endpoint)
			fmt.Fprintf(p.out, "\"Health\" : %v\n", h.Health)
			fmt.Fprintf(p.out, "\"Took\" : %s\n", h.Took)
			fmt.Fprintf(p.out, "\"Error\" : %s\n", h.Error)
			fmt.Fprintln(p.out)
		}
	case formatJSON:
		p.json(list)
	default:
		return p.unsupported()
	}
	return nil
}

// endpointStatusResult is one endpoint's status; the JSON names are
// etcdctl's.
type endpointStatusResult struct {
	Endpoint string                   `json:"Endpoint"`
	Status   *clientv3.StatusResponse `json:"Status"`
}

func (a *app) endpointStatus(cmd *cobra.Command, cluster bool) error {
	p, err := a.newPrinter()
	if err != nil {
		return err
	}
	var list []endpointStatusResult
	failed, err := a.forEachEndpoint(cmd, cluster, func(ctx context.Context, cli *clientv3.Client, ep string) error {
		resp, err := cli.Status(ctx, ep)
		if err != nil {
			// Reported, and the other endpoints are still listed.
			fmt.Fprintf(a.errOut, "Failed to get the status of endpoint %s (%v)\n", ep, err)
			return err
		}
		list = append(list, endpointStatusResult{Endpoint: ep, Status: resp})
		return nil
	})
	if err != nil {
		return err
	}
	if err := p.endpointStatus(list); err != nil {
		return err
	}
	if failed != nil {
		return quietFailure()
	}
	return nil
}

// forEachEndpoint calls do once per endpoint (--endpoints, or with
// --cluster every member's client URL), each with its own single-endpoint
// client and --command-timeout, and returns the last error do returned.
// err is set only when no client could be made at all.
func (a *app) forEachEndpoint(cmd *cobra.Command, cluster bool, do func(ctx context.Context, cli *clientv3.Client, ep string) error) (last, err error) {
	spec, err := a.configSpec(cmd)
	if err != nil {
		return nil, err
	}
	eps, err := a.endpoints(cmd, spec, cluster)
	if err != nil {
		return nil, err
	}
	for _, ep := range eps {
		one := *spec
		one.Endpoints = []string{ep}
		cli, err := newClient(&one)
		if err != nil {
			return nil, err
		}
		ctx, cancel := a.commandContext(cmd)
		if derr := do(ctx, cli, ep); derr != nil {
			last = derr
		}
		cancel()
		cli.Close()
	}
	return last, nil
}

// statusTable is the status list as table rows; the simple format prints
// the same rows comma-separated.
func statusTable(list []endpointStatusResult) (header []string, rows [][]string) {
	header = []string{
		"endpoint", "ID", "version", "storage version", "db size", "in use", "percentage not in use", "quota",
		"is leader", "is learner", "raft term", "raft index", "raft applied index", "errors",
		"downgrade target version", "downgrade enabled",
	}
	for _, st := range list {
		r := (*pb.StatusResponse)(st.Status)
		notInUse := 0
		if r.GetDbSize() > 0 { // etcdctl divides by zero here
			notInUse = int(100 - r.GetDbSizeInUse()*100/r.GetDbSize())
		}
		rows = append(rows, []string{
			st.Endpoint,
			fmt.Sprintf("%x", r.GetHeader().GetMemberId()),
			r.GetVersion(),
			r.GetStorageVersion(),
			humanBytes(uint64(r.GetDbSize())),
			humanBytes(uint64(r.GetDbSizeInUse())),
			fmt.Sprintf("%d%%", notInUse),
			humanBytes(uint64(r.GetDbSizeQuota())),
			fmt.Sprint(r.GetLeader() == r.GetHeader().GetMemberId()),
			fmt.Sprint(r.GetIsLearner()),
			fmt.Sprint(r.GetRaftTerm()),
			fmt.Sprint(r.GetRaftIndex()),
			fmt.Sprint(r.GetRaftAppliedIndex()),
			strings.Join(r.GetErrors(), ", "),
			r.GetDowngradeInfo().GetTargetVersion(),
			strconv.FormatBool(r.GetDowngradeInfo().GetEnabled()),
		})
	}
	return header, rows
}

func (p *printer) endpointStatus(list []endpointStatusResult) error {
	switch p.format {
	case formatSimple:
		_, rows := statusTable(list)
		for _, row := range rows {
			fmt.Fprintln(p.out, strings.Join(row, ", "))
		}
	case formatTable:
		p.table(statusTable(list))
	case formatFields:
		for _, st := range list {
			r := (*pb.StatusResponse)(st.Status)
			p.fieldsHeader(r.GetHeader())
			fmt.Fprintf(p.out, "\"Version\" : %q\n", r.GetVersion())
			fmt.Fprintf(p.out, "\"StorageVersion\" : %q\n", r.GetStorageVersion())
			fmt.Fprintln(p.out, `"DBSize" :`, r.GetDbSize())
			fmt.Fprintln(p.out, `"DBSizeInUse" :`, r.GetDbSizeInUse())
			fmt.Fprintln(p.out, `"DBSizeQuota" :`, r.GetDbSizeQuota())
			fmt.Fprintln(p.out, `"Leader" :`, r.GetLeader())
			fmt.Fprintln(p.out, `"IsLearner" :`, r.GetIsLearner())
			fmt.Fprintln(p.out, `"RaftIndex" :`, r.GetRaftIndex())
			fmt.Fprintln(p.out, `"RaftAppliedIndex" :`, r.GetRaftAppliedIndex())
			fmt.Fprintln(p.out, `"Errors" :`, r.GetErrors())
			fmt.Fprintf(p.out, "\"Endpoint\" : %q\n", st.Endpoint)
			fmt.Fprintf(p.out, "\"DowngradeTargetVersion\" : %q\n", r.GetDowngradeInfo().GetTargetVersion())
			fmt.Fprintln(p.out, `"DowngradeEnabled" :`, r.GetDowngradeInfo().GetEnabled())
			fmt.Fprintln(p.out)
		}
	case formatJSON:
		p.json(list)
	default:
		return p.unsupported()
	}
	return nil
}
