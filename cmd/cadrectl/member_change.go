package main

import (
	"context"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/protobuf/proto"
)

// member add, remove, update and promote: the same arguments, output and
// exit codes as etcdctl, plus --dry-run (member_dryrun.go) and, after an
// add, the settings that start the new member under Cadre's names.

// oneMemberVoterWarning is printed before a voter is added to a one-member
// cluster: the change itself is allowed (etcd allows it too), but it is the
// classic way to make a cluster stop accepting writes.
const oneMemberVoterWarning = "Warning: adding a voting member to a one-member cluster raises quorum to 2: " +
	"writes stall until the new member has started and caught up. " +
	"Add it with --learner and promote it once it has caught up to avoid this."

func (a *app) newMemberAddCommand() *cobra.Command {
	var (
		peerURLs        string
		learner, dryRun bool
	)
	cmd := &cobra.Command{
		Use:   "add <memberName> [options]",
		Short: "Adds a member into the cluster",
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.memberAdd(cmd, args, peerURLs, learner, dryRun)
		},
	}
	cmd.Flags().StringVar(&peerURLs, "peer-urls", "", "comma separated peer URLs for the new member.")
	cmd.Flags().BoolVar(&learner, "learner", false, "indicates if the new member is raft learner")
	addDryRunFlag(cmd, &dryRun)
	return cmd
}

func (a *app) newMemberRemoveCommand() *cobra.Command {
	var dryRun bool
	cmd := &cobra.Command{
		Use:   "remove <memberID>",
		Short: "Removes a member from the cluster",
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.memberRemove(cmd, args, dryRun)
		},
	}
	addDryRunFlag(cmd, &dryRun)
	return cmd
}

func (a *app) newMemberUpdateCommand() *cobra.Command {
	var (
		peerURLs string
		dryRun   bool
	)
	cmd := &cobra.Command{
		Use:   "update <memberID> [options]",
		Short: "Updates a member in the cluster",
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.memberUpdate(cmd, args, peerURLs, dryRun)
		},
	}
	cmd.Flags().StringVar(&peerURLs, "peer-urls", "", "comma separated peer URLs for the updated member.")
	addDryRunFlag(cmd, &dryRun)
	return cmd
}

func (a *app) newMemberPromoteCommand() *cobra.Command {
	var dryRun bool
	cmd := &cobra.Command{
		Use:   "promote <memberID>",
		Short: "Promotes a non-voting member in the cluster",
		Long: `Promotes a non-voting learner member to a voting one in the cluster.
`,
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.memberPromote(cmd, args, dryRun)
		},
	}
	addDryRunFlag(cmd, &dryRun)
	return cmd
}

func addDryRunFlag(cmd *cobra.Command, dryRun *bool) {
	cmd.Flags().BoolVar(dryRun, "dry-run", false,
		"ask the cluster whether it would accept the change and what it would do to quorum; change nothing (Cadre only)")
}

func (a *app) memberAdd(cmd *cobra.Command, args []string, peerURLs string, learner, dryRun bool) error {
	if len(args) < 1 {
		return exitf(exitBadArgs, "member name not provided")
	}
	if len(args) > 1 {
		msg := "too many arguments"
		for _, s := range args {
			if strings.HasPrefix(strings.ToLower(s), "http") {
				msg += fmt.Sprintf(", did you mean --peer-urls=%s", s)
			}
		}
		return exitf(exitBadArgs, "%s", msg)
	}
	name := args[0]
	if peerURLs == "" {
		return exitf(exitBadArgs, "member peer urls not provided")
	}
	urls := strings.Split(peerURLs, ",")
	if dryRun {
		return a.dryRun(cmd, dryRunRequest{Action: "add", Name: name, PeerURLs: urls, IsLearner: learner})
	}

	cli, p, err := a.connect(cmd)
	if err != nil {
		return err
	}
	defer cli.Close()
	if !learner {
		a.warnVoterOnOneMember(cmd, cli)
	}
	ctx, cancel := a.commandContext(cmd)
	var resp *clientv3.MemberAddResponse
	if learner {
		resp, err = cli.MemberAddAsLearner(ctx, urls)
	} else {
		resp, err = cli.MemberAdd(ctx, urls)
	}
	cancel()
	if err != nil {
		return memberChangeFailed(err)
	}
	return p.memberAdd(resp, name, peerURLs)
}

// warnVoterOnOneMember prints oneMemberVoterWarning when the cluster has
// exactly one member. It never stops the add (scripts must keep working);
// if the list cannot be read the add reports the real problem.
func (a *app) warnVoterOnOneMember(cmd *cobra.Command, cli *clientv3.Client) {
	ctx, cancel := a.commandContext(cmd)
	defer cancel()
	resp, err := cli.MemberList(ctx)
	if err == nil && len(resp.Members) == 1 {
		fmt.Fprintln(a.errOut, oneMemberVoterWarning)
	}
}

// parseMemberID reads the one <memberID> argument, in hex as etcdctl prints it.
func parseMemberID(args []string) (uint64, error) {
	if len(args) != 1 {
		return 0, exitf(exitBadArgs, "member ID is not provided")
	}
	id, err := strconv.ParseUint(args[0], 16, 64)
	if err != nil {
		return 0, exitf(exitBadArgs, "bad member ID arg (%w), expecting ID in Hex", err)
	}
	return id, nil
}

func (a *app) memberRemove(cmd *cobra.Command, args []string, dryRun bool) error {
	id, err := parseMemberID(args)
	if err != nil {
		return err
	}
	if dryRun {
		return a.dryRun(cmd, dryRunRequest{Action: "remove", ID: fmt.Sprintf("%016x", id), PeerURLs: []string{}})
	}
	return a.memberChange(cmd, func(ctx context.Context, cli *clientv3.Client) (memberResponse, error) {
		resp, err := cli.MemberRemove(ctx, id)
		return (*pb.MemberRemoveResponse)(resp), err
	}, func(p *printer, r memberResponse) error { return p.memberChanged("removed from", id, r) })
}

func (a *app) memberUpdate(cmd *cobra.Command, args []string, peerURLs string, dryRun bool) error {
	id, err := parseMemberID(args)
	if err != nil {
		return err
	}
	if peerURLs == "" {
		return exitf(exitBadArgs, "member peer urls not provided")
	}
	urls := strings.Split(peerURLs, ",")
	if dryRun {
		return a.dryRun(cmd, dryRunRequest{Action: "update", ID: fmt.Sprintf("%016x", id), PeerURLs: urls})
	}
	return a.memberChange(cmd, func(ctx context.Context, cli *clientv3.Client) (memberResponse, error) {
		resp, err := cli.MemberUpdate(ctx, id, urls)
		return (*pb.MemberUpdateResponse)(resp), err
	}, func(p *printer, r memberResponse) error { return p.memberChanged("updated in", id, r) })
}

func (a *app) memberPromote(cmd *cobra.Command, args []string, dryRun bool) error {
	id, err := parseMemberID(args)
	if err != nil {
		return err
	}
	if dryRun {
		return a.dryRun(cmd, dryRunRequest{Action: "promote", ID: fmt.Sprintf("%016x", id), PeerURLs: []string{}})
	}
	return a.memberChange(cmd, func(ctx context.Context, cli *clientv3.Client) (memberResponse, error) {
		resp, err := cli.MemberPromote(ctx, id)
		return (*pb.MemberPromoteResponse)(resp), err
	}, func(p *printer, r memberResponse) error { return p.memberChanged("promoted in", id, r) })
}

// memberResponse is what remove, update and promote answer: a header and
// the members after the change.
type memberResponse interface {
	proto.Message
	GetHeader() *pb.ResponseHeader
	GetMembers() []*pb.Member
}

// memberChange runs one remove, update or promote request and prints it.
func (a *app) memberChange(cmd *cobra.Command,
	do func(context.Context, *clientv3.Client) (memberResponse, error),
	show func(*printer, memberResponse) error,
) error {
	cli, p, err := a.connect(cmd)
	if err != nil {
		return err
	}
	defer cli.Close()
	ctx, cancel := a.commandContext(cmd)
	resp, err := do(ctx, cli)
	cancel()
	if err != nil {
		return memberChangeFailed(err)
	}
	return show(p, resp)
}

// memberChanged prints "Member <id> <verb> cluster <cluster id>" or the
// response; fields and table are not supported, as in etcdctl.
func (p *printer) memberChanged(verb string, id uint64, r memberResponse) error {
	switch p.format {
	case formatSimple:
		// %16x pads with spaces, not zeros: etcdctl's exact format.
		fmt.Fprintf(p.out, "Member %16x %s cluster %16x\n", id, verb, r.GetHeader().GetClusterId())
		return nil
	case formatJSON:
		if p.hex {
			p.json(hexMembersJSON{Header: hexHeader(r.GetHeader()), Members: hexMembers(r.GetMembers())})
		} else {
			p.json(r)
		}
		return nil
	}
	return p.message(r)
}

// hexMemberAddJSON is the json --hex shape of a member add response.
type hexMemberAddJSON struct {
	Header  *hexHeaderJSON   `json:"header"`
	Member  *hexMemberJSON   `json:"member"`
	Members []*hexMemberJSON `json:"members"`
}

func (p *printer) memberAdd(r *clientv3.MemberAddResponse, name, peerURLs string) error {
	resp := (*pb.MemberAddResponse)(r)
	switch p.format {
	case formatSimple:
		as := " "
		if resp.GetMember().GetIsLearner() {
			as = " as learner "
		}
		fmt.Fprintf(p.out, "Member %16x added%sto cluster %16x\n", resp.GetMember().GetID(), as, resp.GetHeader().GetClusterId())
		p.joinSettings(resp, name, peerURLs)
		return nil
	case formatJSON:
		if p.hex {
			p.json(hexMemberAddJSON{Header: hexHeader(resp.GetHeader()), Member: hexMember(resp.GetMember()), Members: hexMembers(resp.GetMembers())})
		} else {
			p.json(resp)
		}
		return nil
	}
	return p.message(resp)
}

// joinSettings prints how to start the member just added: the values
// etcdctl prints as ETCD_* variables, under the CADRE_* names Cadre reads,
// then the same as one command line. Another member that has not started
// yet has no name and is listed as "=<url>", exactly as etcdctl does.
func (p *printer) joinSettings(resp *pb.MemberAddResponse, name, peerURLs string) {
	newID := resp.GetMember().GetID()
	var conf []string
	for _, m := range resp.GetMembers() {
		for _, u := range m.GetPeerURLs() {
			n := m.GetName()
			if m.GetID() == newID {
				n = name
			}
			conf = append(conf, n+"="+u)
		}
	}
	cluster := strings.Join(conf, ",")
	fmt.Fprintln(p.out)
	fmt.Fprintf(p.out, "CADRE_NAME=%q\n", name)
	fmt.Fprintf(p.out, "CADRE_INITIAL_CLUSTER=%q\n", cluster)
	fmt.Fprintf(p.out, "CADRE_INITIAL_ADVERTISE_PEER_URLS=%q\n", peerURLs)
	fmt.Fprintln(p.out, `CADRE_INITIAL_CLUSTER_STATE="existing"`)
	fmt.Fprintln(p.out)
	fmt.Fprintf(p.out, "cadre --name %s --initial-cluster %s --initial-advertise-peer-urls %s --listen-peer-urls %s --initial-cluster-state existing\n",
		shellQuote(name), shellQuote(cluster), shellQuote(peerURLs), shellQuote(peerURLs))
	fmt.Fprintln(p.out, "# Add --data-dir, --listen-client-urls and --advertise-client-urls as you choose for the new member.")
}

// shellSafe matches words a POSIX shell passes through unchanged.
var shellSafe = regexp.MustCompile(`^[A-Za-z0-9_@%+=:,./-]+$`)

// shellQuote makes s one shell word, so the printed command can be pasted.
func shellQuote(s string) string {
	if shellSafe.MatchString(s) {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// quorumLostHint is what an operator needs when a member change cannot be
// committed: the likely cause and the way out (the article's last resort).
const quorumLostHint = "the cluster has no leader: fewer than a quorum of its voting members are reachable, so " +
	"membership cannot change. Bring the stopped members back if you can; if they are gone for good, run " +
	"`cadrectl recover plan --endpoints <survivors>` for the recovery commands"

// memberChangeFailed is requestFailed with quorumLostHint when the error
// means no quorum (etcd's "no leader").
func memberChangeFailed(err error) error {
	ee := &exitError{code: exitFailure, err: err}
	if strings.Contains(err.Error(), rpctypes.ErrNoLeader.Error()) {
		ee.hint = quorumLostHint
	}
	return ee
}
