package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// member list --progress adds, per member, how far it is behind the leader
// and the state of a snapshot being sent to it: what an operator checks
// before adding the next member or promoting a learner. etcd has no API
// for it; Cadre serves GET /cadre/v1/members/progress on any member.

// progressReport is the answer of GET /cadre/v1/members/progress.
type progressReport struct {
	Leader  string           `json:"leader"`
	Commit  uint64           `json:"commit"`
	Members []memberProgress `json:"members"`
}

// memberProgress is one member's replication progress as the leader sees it.
type memberProgress struct {
	ID                 string `json:"id"`
	Match              uint64 `json:"match"`
	Lag                uint64 `json:"lag"` // entries behind the leader's commit index
	SnapshotInFlight   bool   `json:"snapshotInFlight"`
	SnapshotBytesSent  int64  `json:"snapshotBytesSent"`
	SnapshotBytesTotal int64  `json:"snapshotBytesTotal"`
}

// fetchProgress returns the progress report, decoded and as it came.
func (a *app) fetchProgress(cmd *cobra.Command) (*progressReport, []byte, error) {
	h, err := a.newCadreHTTP(cmd)
	if err != nil {
		return nil, nil, err
	}
	raw, err := a.callCadre(cmd, h, "--progress", http.MethodGet, pathProgress, nil)
	if err != nil {
		return nil, nil, err
	}
	var pr progressReport
	if err := json.Unmarshal(raw, &pr); err != nil {
		return nil, nil, exitf(exitFailure, "--progress: the server's answer is not a progress report (%v): %.200s", err, raw)
	}
	return &pr, raw, nil
}

// byID indexes the report by member ID. IDs the server spelled wrongly are
// left out; their members show "-".
func (pr *progressReport) byID() map[uint64]memberProgress {
	out := make(map[uint64]memberProgress, len(pr.Members))
	for _, m := range pr.Members {
		if id, err := strconv.ParseUint(m.ID, 16, 64); err == nil {
			out[id] = m
		}
	}
	return out
}

// progressCells are the Lag and Snapshot cells of one member; "-" for a
// member the leader reported nothing about.
func progressCells(mp memberProgress, ok bool) (lag, snapshot string) {
	if !ok {
		return "-", "-"
	}
	return strconv.FormatUint(mp.Lag, 10), snapshotText(mp)
}

// snapshotText is "-", or the transfer in progress: "sending 42% (12 MB / 28 MB)".
func snapshotText(mp memberProgress) string {
	if !mp.SnapshotInFlight {
		return "-"
	}
	sent := uint64(max(mp.SnapshotBytesSent, 0))
	if mp.SnapshotBytesTotal <= 0 {
		return fmt.Sprintf("sending (%s)", humanBytes(sent))
	}
	total := uint64(mp.SnapshotBytesTotal)
	return fmt.Sprintf("sending %d%% (%s / %s)", min(sent*100/total, 100), humanBytes(sent), humanBytes(total))
}

// memberProgressTable is memberTable with the Lag and Snapshot columns.
func memberProgressTable(members []*pb.Member, pr *progressReport) (header []string, rows [][]string) {
	header, rows = memberTable(members)
	header = append(header, "Lag", "Snapshot")
	prog := pr.byID()
	for i, m := range members {
		mp, ok := prog[m.GetID()]
		lag, snap := progressCells(mp, ok)
		rows[i] = append(rows[i], lag, snap)
	}
	return header, rows
}

// memberListProgress prints a member list with progress. The json format
// is the member list's own JSON with the server's report added under
// "progress", so tools reading the plain list keep working.
func (p *printer) memberListProgress(r *clientv3.MemberListResponse, pr *progressReport, raw []byte) error {
	resp := (*pb.MemberListResponse)(r)
	switch p.format {
	case formatSimple:
		_, rows := memberProgressTable(resp.GetMembers(), pr)
		for _, row := range rows {
			fmt.Fprintln(p.out, strings.Join(row, ", "))
		}
		return nil
	case formatTable:
		p.table(memberProgressTable(resp.GetMembers(), pr))
		return nil
	case formatFields:
		prog := pr.byID()
		p.memberFields(resp, func(m *pb.Member) {
			mp, ok := prog[m.GetID()]
			lag, snap := progressCells(mp, ok)
			fmt.Fprintf(p.out, "\"Lag\" : %s\n", lag)
			fmt.Fprintf(p.out, "\"Snapshot\" : %q\n", snap)
		})
		return nil
	case formatJSON:
		list, err := json.Marshal(p.memberListJSON(resp))
		if err != nil {
			fmt.Fprintln(p.errOut, err)
			return nil
		}
		var prog bytes.Buffer
		if err := json.Compact(&prog, raw); err != nil {
			return exitf(exitFailure, "--progress: the server's answer is not JSON: %v", err)
		}
		p.rawJSON(spliceJSON(list, "progress", prog.Bytes()))
		return nil
	}
	// The protobuf encoding of a member list has no place for progress.
	return p.unsupported()
}

// spliceJSON adds "key": value as the last member of the JSON object obj,
// keeping the order of obj's own keys.
func spliceJSON(obj []byte, key string, value []byte) []byte {
	obj = bytes.TrimSpace(obj)
	body := bytes.TrimSuffix(obj, []byte("}"))
	var out bytes.Buffer
	out.Write(body)
	if len(bytes.TrimSpace(body)) > 1 { // more than "{"
		out.WriteByte(',')
	}
	k, _ := json.Marshal(key)
	out.Write(k)
	out.WriteByte(':')
	out.Write(value)
	out.WriteByte('}')
	return out.Bytes()
}
