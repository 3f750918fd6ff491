package main

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	clientv3 "go.etcd.io/etcd/client/v3"
)

func (a *app) newMemberCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:     "member <subcommand>",
		Short:   "Membership related commands. Use `cadrectl member --help` to see subcommands",
		Long:    "Membership related commands",
		GroupID: groupCluster,
	}
	// etcdctl's order, which its help shows.
	cmd.AddCommand(
		a.newMemberAddCommand(),
		a.newMemberRemoveCommand(),
		a.newMemberUpdateCommand(),
		a.newMemberListCommand(),
		a.newMemberPromoteCommand(),
		a.newMemberHistoryCommand(),
		a.newMemberReplaceCommand(),
	)
	return cmd
}

func (a *app) newMemberListCommand() *cobra.Command {
	var (
		consistency string
		progress    bool
	)
	cmd := &cobra.Command{
		Use:   "list",
		Short: "Lists all members in the cluster",
		Long: `When --write-out is set to simple, this command prints out comma-separated member lists for each endpoint.
The items in the lists are ID, Status, Name, Peer Addrs, Client Addrs, Is Learner.
With --progress (Cadre only) they are followed by Lag and Snapshot: how many
entries each member is behind the leader's commit index, and the progress of a
snapshot being sent to it. "-w wide" is "-w table --progress".
`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.memberList(cmd, consistency, progress)
		},
	}
	cmd.Flags().StringVar(&consistency, "consistency", "l", "Linearizable(l) or Serializable(s)")
	cmd.Flags().BoolVar(&progress, "progress", false, "also show each member's replication lag and snapshot transfer (Cadre only)")
	return cmd
}

func (a *app) memberList(cmd *cobra.Command, consistency string, progress bool) error {
	serializable, err := parseConsistency(consistency)
	if err != nil {
		return err
	}
	if a.global.writeOut == formatWide {
		// Only member list knows "wide"; it is its table with progress.
		a.global.writeOut, progress = formatTable, true
	}
	var opts []clientv3.OpOption
	if serializable {
		opts = append(opts, clientv3.WithSerializable())
	}
	cli, p, err := a.connect(cmd)
	if err != nil {
		return err
	}
	defer cli.Close()
	ctx, cancel := a.commandContext(cmd)
	resp, err := cli.MemberList(ctx, opts...)
	cancel()
	if err != nil {
		return requestFailed(err)
	}
	if !progress {
		if p.format == formatTable {
			p.waiting = a.unstartedWaiting(cmd, resp.Members)
		}
		return p.memberList(resp)
	}
	prog, raw, err := a.fetchProgress(cmd)
	if err != nil {
		return err
	}
	return p.memberListProgress(resp, prog, raw)
}

// memberTable is the member list as table rows; the simple format prints the
// same rows comma-separated.
func memberTable(members []*pb.Member) (header []string, rows [][]string) {
	header = []string{"ID", "Status", "Name", "Peer Addrs", "Client Addrs", "Is Learner"}
	for _, m := range members {
		status := "started"
		if m.GetName() == "" {
			// A member that was added but has not joined yet has no name.
			status = "unstarted"
		}
		rows = append(rows, []string{
			fmt.Sprintf("%x", m.GetID()),
			status,
			m.GetName(),
			strings.Join(m.GetPeerURLs(), ","),
			strings.Join(m.GetClientURLs(), ","),
			fmt.Sprint(m.GetIsLearner()),
		})
	}
	return header, rows
}

func (p *printer) memberList(r *clientv3.MemberListResponse) error {
	resp := (*pb.MemberListResponse)(r)
	switch p.format {
	case formatSimple:
		_, rows := memberTable(resp.GetMembers())
		for _, row := range rows {
			fmt.Fprintln(p.out, strings.Join(row, ", "))
		}
		return nil
	case formatTable:
		header, rows := memberTable(resp.GetMembers())
		for _, row := range rows {
			if w, ok := p.waiting[row[0]]; ok && w != "" {
				row[1] = "unstarted, waiting " + w
			}
		}
		p.table(header, rows)
		return nil
	case formatFields:
		p.memberFields(resp, nil)
		return nil
	case formatJSON:
		p.json(p.memberListJSON(resp))
		return nil
	}
	return p.message(resp)
}

// memberFields prints a member list in the fields format; extra, if set,
// adds lines at the end of each member.
func (p *printer) memberFields(resp *pb.MemberListResponse, extra func(*pb.Member)) {
	p.fieldsHeader(resp.GetHeader())
	for _, m := range resp.GetMembers() {
		if p.hex {
			fmt.Fprintf(p.out, "\"ID\" : %x\n", m.GetID())
		} else {
			fmt.Fprintf(p.out, "\"ID\" : %d\n", m.GetID())
		}
		fmt.Fprintf(p.out, "\"Name\" : %q\n", m.GetName())
		for _, u := range m.GetPeerURLs() {
			fmt.Fprintf(p.out, "\"PeerURL\" : %q\n", u)
		}
		for _, u := range m.GetClientURLs() {
			fmt.Fprintf(p.out, "\"ClientURL\" : %q\n", u)
		}
		fmt.Fprintf(p.out, "\"IsLearner\" : %v\n", m.GetIsLearner())
		if extra != nil {
			extra(m)
		}
		fmt.Fprintln(p.out)
	}
}

// memberListJSON is the value the json format prints for a member list.
func (p *printer) memberListJSON(resp *pb.MemberListResponse) any {
	if p.hex {
		return hexMembersJSON{Header: hexHeader(resp.GetHeader()), Members: hexMembers(resp.GetMembers())}
	}
	return resp
}

// hexHeaderJSON is a response header with IDs as hex strings (json --hex).
type hexHeaderJSON struct {
	ClusterID string `json:"cluster_id"`
	MemberID  string `json:"member_id"`
	Revision  int64  `json:"revision,omitempty"`
	RaftTerm  uint64 `json:"raft_term,omitempty"`
}

// hexMemberJSON is a member with its ID as a hex string (json --hex).
type hexMemberJSON struct {
	ID         string   `json:"ID"`
	Name       string   `json:"name,omitempty"`
	PeerURLs   []string `json:"peerURLs,omitempty"`
	ClientURLs []string `json:"clientURLs,omitempty"`
	IsLearner  bool     `json:"isLearner,omitempty"`
}

// hexMembersJSON is the json --hex shape of member responses.
type hexMembersJSON struct {
	Header  *hexHeaderJSON   `json:"header"`
	Members []*hexMemberJSON `json:"members"`
}

func hexHeader(h *pb.ResponseHeader) *hexHeaderJSON {
	if h == nil {
		return nil
	}
	return &hexHeaderJSON{
		ClusterID: fmt.Sprintf("%x", h.GetClusterId()),
		MemberID:  fmt.Sprintf("%x", h.GetMemberId()),
		Revision:  h.GetRevision(),
		RaftTerm:  h.GetRaftTerm(),
	}
}

func hexMember(m *pb.Member) *hexMemberJSON {
	if m == nil {
		return nil
	}
	return &hexMemberJSON{
		ID:         fmt.Sprintf("%x", m.GetID()),
		Name:       m.GetName(),
		PeerURLs:   m.GetPeerURLs(),
		ClientURLs: m.GetClientURLs(),
		IsLearner:  m.GetIsLearner(),
	}
}

// hexMembers never returns nil, so an empty list prints as [] like etcdctl.
func hexMembers(ms []*pb.Member) []*hexMemberJSON {
	out := make([]*hexMemberJSON, len(ms))
	for i, m := range ms {
		out[i] = hexMember(m)
	}
	return out
}
