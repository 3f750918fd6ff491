package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/spf13/cobra"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/cadrekv/cadre/internal/membership"
)

// `cadrectl member replace`: the new member joins as a learner that
// records which voter it replaces; once it has started and caught up, the
// leader swaps it in and the old voter out in one joint-consensus change,
// so quorum never grows and the voter count never turns even.

const (
	pathReplace  = "/cadre/v1/members/replace"
	replacePause = time.Second // how often --wait looks
)

func (a *app) newMemberReplaceCommand() *cobra.Command {
	var (
		name, peerURLs string
		dryRun, wait   bool
		waitTimeout    time.Duration
	)
	cmd := &cobra.Command{
		Use:   "replace <old-memberID> --name <newName> --peer-urls <urls>",
		Short: "Replaces a voting member with a new one in one joint-consensus change (Cadre only)",
		Long: `Adds the new member as a learner that replaces <old-memberID> and prints the
settings to start it with, as 'member add' does. Once the new member has started
and caught up, the leader swaps it in and the old member out in one raft change
(joint consensus): the number of voters and the quorum never change. The old
member then exits (exit code 3). --dry-run shows every step with its quorum and
failure tolerance; --wait shows progress until the swap is done.
`,
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.memberReplace(cmd, args, name, peerURLs, dryRun, wait, waitTimeout)
		},
	}
	cmd.Flags().StringVar(&name, "name", "", "name of the new member")
	cmd.Flags().StringVar(&peerURLs, "peer-urls", "", "comma separated peer URLs of the new member")
	cmd.Flags().BoolVar(&wait, "wait", false, "after the add, show progress until the new member has replaced the old one")
	cmd.Flags().DurationVar(&waitTimeout, "wait-timeout", 30*time.Minute, "how long --wait waits")
	addDryRunFlag(cmd, &dryRun)
	return cmd
}

func (a *app) memberReplace(cmd *cobra.Command, args []string, name, peerURLs string, dryRun, wait bool, waitTimeout time.Duration) error {
	if len(args) != 1 {
		return exitf(exitBadArgs, "member ID of the member to replace not provided (cadrectl member replace <old-memberID> --name <newName> --peer-urls <urls>)")
	}
	old, err := parseMemberID(args)
	if err != nil {
		return err
	}
	if name == "" {
		return exitf(exitBadArgs, "--name not provided: the new member's name")
	}
	if peerURLs == "" {
		return exitf(exitBadArgs, "member peer urls not provided (--peer-urls)")
	}
	h, err := a.newCadreHTTP(cmd)
	if err != nil {
		return err
	}
	p, err := a.newPrinter()
	if err != nil {
		return err
	}
	body, _ := json.Marshal(membership.ReplaceRequest{Old: membership.IDString(old), Name: name, PeerURLs: strings.Split(peerURLs, ","), DryRun: dryRun})
	raw, err := a.callCadre(cmd, h, "member replace", http.MethodPost, pathReplace, body)
	if err != nil {
		return err
	}
	var ans membership.ReplaceAnswer
	if err := json.Unmarshal(raw, &ans); err != nil {
		return exitf(exitFailure, "member replace: unreadable answer (%v): %.200s", err, raw)
	}
	if p.format == formatJSON {
		p.rawJSON(raw)
	} else if dryRun {
		p.replacePlan(ans.Plan)
	} else {
		p.replaced(&ans, old, name, peerURLs)
	}
	if dryRun {
		if ans.Plan != nil && !ans.Plan.Verdict.Accepted {
			return &exitError{code: exitFailure, err: fmt.Errorf("%s", ans.Plan.Verdict.Detail), hint: ans.Plan.Verdict.Fix}
		}
		return nil
	}
	if !wait {
		return nil
	}
	return a.waitReplace(cmd, h, p, old, ans.Member.ID, name, waitTimeout)
}

func (p *printer) replacePlan(plan *membership.ReplacePlan) {
	if plan == nil {
		return
	}
	v := plan.Verdict
	if v.Accepted {
		fmt.Fprintln(p.out, "The replace would be accepted. Its steps:")
	} else {
		fmt.Fprintf(p.out, "The replace would be refused: %s\n", v.Detail)
		if v.Fix != "" {
			fmt.Fprintf(p.out, "Fix: %s\n", v.Fix)
		}
		fmt.Fprintln(p.out, "Its steps, were it accepted:")
	}
	for i, s := range plan.Steps {
		fmt.Fprintf(p.out, "%d. %s\n", i+1, s.Step)
		if len(s.VotersOutgoing) > 0 {
			fmt.Fprintf(p.out, "   voters (old): %s\n", strings.Join(s.VotersOutgoing, ", "))
			fmt.Fprintf(p.out, "   voters (new): %s\n", strings.Join(s.Voters, ", "))
		} else {
			fmt.Fprintf(p.out, "   voters: %s\n", strings.Join(s.Voters, ", "))
		}
		if len(s.Learners) > 0 {
			fmt.Fprintf(p.out, "   learners: %s\n", strings.Join(s.Learners, ", "))
		}
		fmt.Fprintf(p.out, "   quorum: %s; failure tolerance: %d\n", s.Quorum, s.FailureTolerance)
	}
	for _, w := range v.Warnings {
		fmt.Fprintf(p.out, "Warning: %s\n", w)
	}
}

func (p *printer) replaced(ans *membership.ReplaceAnswer, old uint64, name, peerURLs string) {
	cid, _ := membership.ParseID(ans.ClusterID)
	resp := &pb.MemberAddResponse{Header: &pb.ResponseHeader{ClusterId: cid}}
	for _, m := range ans.Members {
		pm := &pb.Member{ID: m.ID, Name: m.Name, PeerURLs: m.PeerURLs, ClientURLs: m.ClientURLs, IsLearner: m.IsLearner}
		resp.Members = append(resp.Members, pm)
		if ans.Member != nil && m.ID == ans.Member.ID {
			resp.Member = pm
		}
	}
	fmt.Fprintf(p.out, "Member %16x added as learner to cluster %16x to replace %16x\n", resp.GetMember().GetID(), cid, old)
	p.joinSettings(resp, name, peerURLs)
	fmt.Fprintf(p.out, "# Once %s has started and caught up, the leader swaps it in for %16x in one joint-consensus change; %16x then exits (exit code 3).\n", name, old, old)
}

// waitReplace shows the replace's progress until the old member is gone
// and the new one votes, bounded by timeout.
func (a *app) waitReplace(cmd *cobra.Command, h *cadreHTTP, p *printer, old, newID uint64, name string, timeout time.Duration) error {
	cli, _, err := a.connect(cmd)
	if err != nil {
		return err
	}
	defer cli.Close()
	deadline := time.Now().Add(timeout)
	last := ""
	for time.Now().Before(deadline) {
		state, done := a.replaceState(cmd, cli, h, old, newID, name)
		if state != last {
			fmt.Fprintf(p.out, "%s %s\n", time.Now().Format("15:04:05"), state)
			last = state
		}
		if done {
			return nil
		}
		time.Sleep(replacePause)
	}
	return exitf(exitFailure, "member replace: not done after --wait-timeout %v (last: %s); `cadrectl member list --progress` shows where it stands", timeout, last)
}

// replaceState describes where a replace stands, and whether it is done.
func (a *app) replaceState(cmd *cobra.Command, cli *clientv3.Client, h *cadreHTTP, old, newID uint64, name string) (string, bool) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ml, err := cli.MemberList(ctx)
	if err != nil {
		return "cannot list members: " + err.Error(), false
	}
	var newM, oldM *pb.Member
	for _, m := range ml.Members {
		switch m.ID {
		case newID:
			newM = m
		case old:
			oldM = m
		}
	}
	switch {
	case newM == nil:
		return fmt.Sprintf("%s (%16x) is no longer a member: the replace was cancelled (member remove)", name, newID), true
	case oldM == nil && !newM.IsLearner:
		return fmt.Sprintf("done: %s (%16x) votes and %16x was removed", name, newID, old), true
	case newM.Name == "":
		return fmt.Sprintf("waiting for %s to start (with the settings printed above)", name), false
	}
	raw, err := h.call(ctx, http.MethodGet, pathProgress, nil)
	if err != nil {
		return fmt.Sprintf("%s started; catching up", name), false
	}
	var pr membership.Progress
	if json.Unmarshal(raw, &pr) != nil {
		return fmt.Sprintf("%s started; catching up", name), false
	}
	if len(pr.Raft.VotersOutgoing) > 0 {
		return "joint configuration: voters " + strings.Join(pr.Raft.VotersOutgoing, ",") + " and " + strings.Join(pr.Raft.Voters, ",") + " both decide", false
	}
	for _, m := range pr.Members {
		if m.ID == newID {
			return fmt.Sprintf("%s started; catching up (lag %d entries)", name, m.Lag), false
		}
	}
	return fmt.Sprintf("%s started; catching up", name), false
}
