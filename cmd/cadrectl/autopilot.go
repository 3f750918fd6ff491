package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"

	"github.com/spf13/cobra"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
)

// autopilot get|set: the replicated configuration of what the leader may do
// to the membership by itself (promote caught-up learners, remove members
// that never started). etcd has nothing like it; Cadre serves it at
// /cadre/v1/autopilot on any member.

// autopilotStatus is the answer of GET /cadre/v1/autopilot.
type autopilotStatus struct {
	Settings struct {
		PromoteLearners bool   `json:"promoteLearners"`
		PromoteAfter    string `json:"promoteAfter"`
		UnstartedTTL    string `json:"unstartedTTL"`
	} `json:"settings"`
	Unstarted []struct {
		ID       string   `json:"id"`
		PeerURLs []string `json:"peerURLs"`
		Waiting  string   `json:"waiting"`
	} `json:"unstarted"`
}

func (a *app) newAutopilotCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:     "autopilot <subcommand>",
		Short:   "Cadre: membership changes the leader makes by itself (off unless set)",
		GroupID: groupCluster,
	}
	cmd.AddCommand(&cobra.Command{
		Use:   "get",
		Short: "Shows the autopilot settings and the members waiting to start",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			st, raw, err := a.fetchAutopilot(cmd)
			if err != nil {
				return err
			}
			return a.printAutopilot(st, raw)
		},
	}, &cobra.Command{
		Use:   "set <key=value>...",
		Short: "Changes autopilot settings for the whole cluster: promote-learners=true|false, promote-after=10s, unstarted-ttl=10m|0",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			for _, kv := range args {
				if !strings.Contains(kv, "=") {
					return exitf(exitBadArgs, "autopilot set %q: expected key=value (promote-learners=true, promote-after=10s, unstarted-ttl=10m)", kv)
				}
			}
			h, err := a.newCadreHTTP(cmd)
			if err != nil {
				return err
			}
			body, _ := json.Marshal(map[string][]string{"settings": args})
			if _, err := a.callCadre(cmd, h, "autopilot set", http.MethodPost, pathAutopilot, body); err != nil {
				return err
			}
			st, raw, err := a.fetchAutopilot(cmd)
			if err != nil {
				return err
			}
			return a.printAutopilot(st, raw)
		},
	})
	return cmd
}

func (a *app) fetchAutopilot(cmd *cobra.Command) (*autopilotStatus, []byte, error) {
	h, err := a.newCadreHTTP(cmd)
	if err != nil {
		return nil, nil, err
	}
	raw, err := a.callCadre(cmd, h, "autopilot", http.MethodGet, pathAutopilot, nil)
	if err != nil {
		return nil, nil, err
	}
	var st autopilotStatus
	if err := json.Unmarshal(raw, &st); err != nil {
		return nil, nil, exitf(exitFailure, "autopilot: the server's answer is not an autopilot status (%v): %.200s", err, raw)
	}
	return &st, raw, nil
}

func (a *app) printAutopilot(st *autopilotStatus, raw []byte) error {
	ttl := st.Settings.UnstartedTTL
	if ttl == "0s" {
		ttl = "0 (off)"
	}
	switch a.global.writeOut {
	case "json":
		fmt.Fprintln(a.out, strings.TrimSpace(string(raw)))
	case "table":
		renderTable(a.out, []string{"SETTING", "VALUE"}, [][]string{
			{"promote-learners", fmt.Sprint(st.Settings.PromoteLearners)},
			{"promote-after", st.Settings.PromoteAfter},
			{"unstarted-ttl", ttl},
		})
		if len(st.Unstarted) > 0 {
			var rows [][]string
			for _, u := range st.Unstarted {
				rows = append(rows, []string{u.ID, strings.Join(u.PeerURLs, ","), orDash(u.Waiting)})
			}
			renderTable(a.out, []string{"UNSTARTED MEMBER", "PEER ADDRS", "WAITING"}, rows)
		}
	default:
		fmt.Fprintf(a.out, "promote-learners=%v\npromote-after=%s\nunstarted-ttl=%s\n", st.Settings.PromoteLearners, st.Settings.PromoteAfter, ttl)
		for _, u := range st.Unstarted {
			fmt.Fprintf(a.out, "unstarted %s, %s, waiting %s\n", u.ID, strings.Join(u.PeerURLs, ","), orDash(u.Waiting))
		}
	}
	return nil
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// unstartedWaiting asks a Cadre server how long each unstarted member has
// waited; with none unstarted, or a server that is not Cadre, it is empty
// (member list stays what etcdctl prints).
func (a *app) unstartedWaiting(cmd *cobra.Command, members []*pb.Member) map[string]string {
	unstarted := false
	for _, m := range members {
		unstarted = unstarted || m.GetName() == ""
	}
	if !unstarted {
		return nil
	}
	st, _, err := a.fetchAutopilot(cmd)
	if err != nil {
		return nil
	}
	out := map[string]string{}
	for _, u := range st.Unstarted {
		out[strings.TrimLeft(u.ID, "0")] = u.Waiting
	}
	return out
}
