package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"

	"github.com/spf13/cobra"
)

// --dry-run on member add|remove|update|promote asks the cluster to judge a
// change without making it. It does not use the etcd API (which has no such
// call) but Cadre's POST /cadre/v1/members/dry-run, on any member: the
// leader judges, with what it knows of every member's progress.

// dryRunRequest is the body of POST /cadre/v1/members/dry-run.
type dryRunRequest struct {
	Action    string   `json:"action"` // add, remove, update or promote
	ID        string   `json:"id"`     // 16 hex digits; empty for add
	Name      string   `json:"name,omitempty"`
	PeerURLs  []string `json:"peerURLs"`
	IsLearner bool     `json:"isLearner"`
}

// dryRunVerdict is the server's answer.
type dryRunVerdict struct {
	Accepted               bool           `json:"accepted"`
	Error                  string         `json:"error"`
	Fix                    string         `json:"fix"`
	Detail                 string         `json:"detail"`
	Warnings               []string       `json:"warnings"`
	VotersBefore           []string       `json:"votersBefore"`
	VotersAfter            []string       `json:"votersAfter"`
	LearnersBefore         []string       `json:"learnersBefore"`
	LearnersAfter          []string       `json:"learnersAfter"`
	QuorumBefore           int            `json:"quorumBefore"`
	QuorumAfter            int            `json:"quorumAfter"`
	FailureToleranceBefore int            `json:"failureToleranceBefore"`
	FailureToleranceAfter  int            `json:"failureToleranceAfter"`
	Members                []dryRunMember `json:"members"`
}

// dryRunMember is one member as the leader sees it.
type dryRunMember struct {
	ID          string `json:"id"`
	Name        string `json:"name"`
	Started     bool   `json:"started"`
	IsLearner   bool   `json:"isLearner"`
	Active      bool   `json:"active"`
	ActiveSince string `json:"activeSince"` // RFC 3339; empty when not active
	Match       uint64 `json:"match"`
	Lag         uint64 `json:"lag"`
}

// dryRun sends req and prints the verdict: readable in the simple and table
// formats, the server's JSON with -w json. A refused change exits 1, so
// scripts can gate the real change on it.
func (a *app) dryRun(cmd *cobra.Command, req dryRunRequest) error {
	h, err := a.newCadreHTTP(cmd)
	if err != nil {
		return err
	}
	p, err := a.newPrinter()
	if err != nil {
		return err
	}
	switch p.format {
	case formatSimple, formatTable, formatJSON:
	default:
		// Nothing has been asked yet: no reason to wait for the answer.
		return p.unsupported()
	}
	body, err := json.Marshal(req)
	if err != nil {
		return exitWith(exitFailure, err)
	}
	raw, err := a.callCadre(cmd, h, "--dry-run", http.MethodPost, pathDryRun, body)
	if err != nil {
		return err
	}
	var v dryRunVerdict
	if err := json.Unmarshal(raw, &v); err != nil {
		return exitf(exitFailure, "--dry-run: the server's answer is not a verdict (%v): %.200s", err, raw)
	}
	if p.format == formatJSON {
		p.rawJSON(raw)
	} else {
		p.verdict(req, &v)
	}
	if !v.Accepted {
		// The verdict, already printed, says why.
		return quietFailure()
	}
	return nil
}

// rawJSON prints a JSON document as one line, like every -w json output.
func (p *printer) rawJSON(raw []byte) {
	var b bytes.Buffer
	if err := json.Compact(&b, raw); err != nil {
		b.Reset()
		b.Write(bytes.TrimSpace(raw))
	}
	fmt.Fprintln(p.out, b.String())
}

// verdict prints a dry run's verdict for people:
//
//	Dry run: member add infra4 --peer-urls=http://10.0.0.4:2380 --learner (nothing was changed)
//	<table of members>
//	Voters:            3 -> 3
//	...
//	Verdict: accepted
func (p *printer) verdict(req dryRunRequest, v *dryRunVerdict) {
	fmt.Fprintf(p.out, "Dry run: %s (nothing was changed)\n", describeChange(req))
	var rows [][]string
	for _, m := range v.Members {
		since := "-"
		if m.Active {
			since = m.ActiveSince
			if since == "" {
				since = "yes"
			}
		}
		rows = append(rows, []string{m.ID, m.Name, fmt.Sprint(m.Started), fmt.Sprint(m.IsLearner), since, fmt.Sprint(m.Lag)})
	}
	p.table([]string{"ID", "Name", "Started", "Is Learner", "Active Since", "Lag"}, rows)
	fmt.Fprintf(p.out, "Voters:            %d -> %d\n", len(v.VotersBefore), len(v.VotersAfter))
	fmt.Fprintf(p.out, "Learners:          %d -> %d\n", len(v.LearnersBefore), len(v.LearnersAfter))
	fmt.Fprintf(p.out, "Quorum:            %d -> %d\n", v.QuorumBefore, v.QuorumAfter)
	fmt.Fprintf(p.out, "Failure tolerance: %d -> %d\n", v.FailureToleranceBefore, v.FailureToleranceAfter)
	if v.Detail != "" {
		fmt.Fprintf(p.out, "Detail: %s\n", v.Detail)
	}
	for _, w := range v.Warnings {
		fmt.Fprintf(p.out, "Warning: %s\n", w)
	}
	if v.Accepted {
		fmt.Fprintln(p.out, "Verdict: accepted")
		return
	}
	fmt.Fprintf(p.out, "Verdict: refused: %s\n", v.Error)
	if v.Fix != "" {
		fmt.Fprintf(p.out, "Fix: %s\n", v.Fix)
	}
}

// describeChange spells the change as the command that would make it.
func describeChange(req dryRunRequest) string {
	var sb strings.Builder
	sb.WriteString("member " + req.Action)
	if req.Action == "add" {
		sb.WriteString(" " + shellQuote(req.Name))
	} else {
		sb.WriteString(" " + req.ID)
	}
	if len(req.PeerURLs) > 0 {
		sb.WriteString(" --peer-urls=" + shellQuote(strings.Join(req.PeerURLs, ",")))
	}
	if req.IsLearner {
		sb.WriteString(" --learner")
	}
	return sb.String()
}
