package main

import (
	"context"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/spf13/cobra"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// `cadrectl recover plan`: after a cluster lost its majority for good, ask
// every reachable survivor for its status (a member answers Status without
// a leader), pick the one with the most recent committed data, and print
// the exact commands for both recovery paths. It changes nothing.

func (a *app) newRecoverCommand() *cobra.Command {
	rc := &cobra.Command{
		Use:     "recover <subcommand>",
		Short:   "Plans the recovery of a cluster that lost its quorum for good.",
		GroupID: groupCluster,
	}
	rc.AddCommand(&cobra.Command{
		Use:   "plan",
		Short: "Reads every reachable survivor (--endpoints), picks the freshest and prints the recovery commands.",
		RunE:  a.recoverPlan,
	})
	return rc
}

// survivor is one reachable member's state.
type survivor struct {
	endpoint string
	status   *clientv3.StatusResponse
	self     *pb.Member
	members  []*pb.Member
}

// fresher orders survivors by the data they hold: the raft term of their
// log first, then the committed index, then the applied index.
func fresher(a, b *survivor) bool {
	if a.status.RaftTerm != b.status.RaftTerm {
		return a.status.RaftTerm > b.status.RaftTerm
	}
	if a.status.RaftIndex != b.status.RaftIndex {
		return a.status.RaftIndex > b.status.RaftIndex
	}
	return a.status.RaftAppliedIndex > b.status.RaftAppliedIndex
}

func (a *app) recoverPlan(cmd *cobra.Command, args []string) error {
	spec, err := a.configSpec(cmd)
	if err != nil {
		return err
	}
	ctx, cancel := a.commandContext(cmd)
	defer cancel()
	var found []*survivor
	var unreachable []string
	for _, ep := range spec.Endpoints {
		s, err := readSurvivor(ctx, spec, ep)
		if err != nil {
			unreachable = append(unreachable, fmt.Sprintf("%s (%v)", ep, err))
			continue
		}
		found = append(found, s)
	}
	if len(found) == 0 {
		return exitf(exitFailure, "no survivor answered: %s", strings.Join(unreachable, "; "))
	}
	sort.SliceStable(found, func(i, j int) bool { return fresher(found[i], found[j]) })
	writePlan(a.out, found, unreachable)
	return nil
}

func readSurvivor(ctx context.Context, spec *clientv3.ConfigSpec, ep string) (*survivor, error) {
	one := *spec
	one.Endpoints = []string{ep}
	cli, err := newClient(&one)
	if err != nil {
		return nil, err
	}
	defer cli.Close()
	st, err := cli.Status(ctx, ep)
	if err != nil {
		return nil, err
	}
	s := &survivor{endpoint: ep, status: st}
	// A serializable list answers without a leader.
	if ml, err := cli.MemberList(ctx, clientv3.WithSerializable()); err == nil {
		s.members = ml.Members
		for _, m := range ml.Members {
			if m.ID == st.Header.GetMemberId() {
				s.self = m
			}
		}
	}
	return s, nil
}

func memberName(m *pb.Member, id uint64) string {
	if m != nil && m.Name != "" {
		return m.Name
	}
	return fmt.Sprintf("%016x", id)
}

func writePlan(w io.Writer, found []*survivor, unreachable []string) {
	best := found[0]
	id := best.status.Header.GetMemberId()
	name := memberName(best.self, id)
	fmt.Fprintf(w, "Survivors (freshest first):\n")
	for _, s := range found {
		sid := s.status.Header.GetMemberId()
		leader := "no leader"
		if s.status.Leader != 0 {
			leader = fmt.Sprintf("leader %016x", s.status.Leader)
		}
		fmt.Fprintf(w, "  %-16s %016x  term %d  committed %d  applied %d  (%s)  %s\n",
			memberName(s.self, sid), sid, s.status.RaftTerm, s.status.RaftIndex, s.status.RaftAppliedIndex, leader, s.endpoint)
	}
	for _, u := range unreachable {
		fmt.Fprintf(w, "  unreachable: %s\n", u)
	}
	var others []*pb.Member
	for _, m := range best.members {
		if m.ID != id {
			others = append(others, m)
		}
	}

	fmt.Fprintf(w, "\nFreshest: %s (%016x) at %s, term %d, committed index %d.\n", name, id, best.endpoint, best.status.RaftTerm, best.status.RaftIndex)
	fmt.Fprintf(w, "Before either path, stop every surviving member, so that only one copy of the cluster ever runs again.\n")

	fmt.Fprintf(w, "\nPath A: restart %s as a one-member cluster (keeps every committed write, forgets the other members):\n", name)
	fmt.Fprintf(w, "  cadre --name %s --data-dir <%s's data dir> --listen-peer-urls <as before> --listen-client-urls <as before> --advertise-client-urls %s --force-new-cluster\n",
		name, name, best.endpoint)
	fmt.Fprintf(w, "  (then restart it once more without --force-new-cluster; the old members are refused as removed)\n")

	fmt.Fprintf(w, "\nPath B: snapshot it and restore into fresh members (new member and cluster IDs):\n")
	fmt.Fprintf(w, "  cadrectl --endpoints=%s snapshot save recovery.db\n", best.endpoint)
	var initial []string
	for _, m := range append([]*pb.Member{best.self}, others...) {
		if m != nil && len(m.PeerURLs) > 0 {
			initial = append(initial, memberName(m, m.ID)+"="+m.PeerURLs[0])
		}
	}
	for _, m := range append([]*pb.Member{best.self}, others...) {
		if m == nil || len(m.PeerURLs) == 0 {
			continue
		}
		fmt.Fprintf(w, "  cadre snapshot restore recovery.db --name %s --initial-cluster %s --initial-cluster-token <a new token> --initial-advertise-peer-urls %s --data-dir <a new, empty data dir>\n",
			memberName(m, m.ID), strings.Join(initial, ","), m.PeerURLs[0])
	}
	fmt.Fprintf(w, "  then start each restored member with the same --name, --initial-cluster, --initial-cluster-token and its data dir.\n")

	if len(others) > 0 {
		fmt.Fprintf(w, "\nAfter path A, grow back one member at a time (wait for each to show as started in `member list` first):\n")
		for _, m := range others {
			if len(m.PeerURLs) == 0 {
				continue
			}
			fmt.Fprintf(w, "  wipe %s's old data dir, then: cadrectl --endpoints=%s member add %s --peer-urls=%s\n", memberName(m, m.ID), best.endpoint, memberName(m, m.ID), m.PeerURLs[0])
			fmt.Fprintf(w, "    and start %s with the settings that command prints (--initial-cluster-state existing).\n", memberName(m, m.ID))
		}
	}
}
