package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
)

// member history: the membership audit trail (Cadre only). Applied
// changes are the same on every member; refusals are those the answering
// member saw.

const pathHistory = "/cadre/v1/members/history"

type historyRecord struct {
	Index      uint64    `json:"index"`
	Term       uint64    `json:"term"`
	At         time.Time `json:"at"`
	By         string    `json:"by"`
	Action     string    `json:"action"`
	Member     string    `json:"member"`
	Name       string    `json:"name"`
	PeerURLs   []string  `json:"peerURLs"`
	Before     summary   `json:"before"`
	After      summary   `json:"after"`
	Verdict    string    `json:"verdict"`
	Outcome    string    `json:"outcome"`
	RecordedBy string    `json:"recordedBy"`
}

type summary struct {
	Voters   []string `json:"voters"`
	Learners []string `json:"learners"`
}

func (s summary) String() string {
	out := fmt.Sprintf("%d voter(s)", len(s.Voters))
	if len(s.Learners) > 0 {
		out += fmt.Sprintf(" + %d learner(s)", len(s.Learners))
	}
	return out
}

func (a *app) newMemberHistoryCommand() *cobra.Command {
	var since string
	cmd := &cobra.Command{
		Use:   "history",
		Short: "Cadre: the membership audit trail (who changed what, when, and the changes refused)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			h, err := a.newCadreHTTP(cmd)
			if err != nil {
				return err
			}
			q := url.Values{}
			if since != "" {
				q.Set("since", since)
			}
			path := pathHistory
			if len(q) > 0 {
				path += "?" + q.Encode()
			}
			raw, err := a.callCadre(cmd, h, "member history", http.MethodGet, path, nil)
			if err != nil {
				return err
			}
			var resp struct {
				Records []historyRecord `json:"records"`
			}
			if err := json.Unmarshal(raw, &resp); err != nil {
				return exitf(exitFailure, "member history: the server's answer is not a history (%v): %.200s", err, raw)
			}
			switch a.global.writeOut {
			case "json":
				fmt.Fprintln(a.out, strings.TrimSpace(string(raw)))
			case "table":
				var rows [][]string
				for _, r := range resp.Records {
					rows = append(rows, []string{r.At.Local().Format(time.DateTime), indexText(r.Index), r.By, r.Action, strings.TrimLeft(r.Member, "0"), r.Name,
						r.Before.String() + " -> " + r.After.String(), r.Outcome})
				}
				renderTable(a.out, []string{"TIME", "INDEX", "BY", "ACTION", "MEMBER", "NAME", "CONFIGURATION", "OUTCOME"}, rows)
			default:
				for _, r := range resp.Records {
					fmt.Fprintf(a.out, "%s, %s, %s, %s, %s, %s, %s -> %s, %s\n", r.At.Local().Format(time.RFC3339), indexText(r.Index), r.By, r.Action,
						strings.TrimLeft(r.Member, "0"), r.Name, r.Before, r.After, r.Outcome)
				}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&since, "since", "", "only records at or after this: a duration back from now (1h) or an RFC 3339 time")
	return cmd
}

func indexText(i uint64) string {
	if i == 0 {
		return "-"
	}
	return strconv.FormatUint(i, 10)
}
