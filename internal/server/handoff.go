package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"

	"github.com/cadrekv/cadre/internal/apply"
	"github.com/cadrekv/cadre/internal/membership"
)

// Loss-free leadership hand-off. Raft drops a proposal that reaches a
// leader handing over leadership, or a member that knows no leader, and
// tells nobody when the proposal was forwarded: its client waited out the
// whole request timeout. Here the member that drops a forwarded proposal
// tells its proposer (POST /cadre/proposals/dropped), and the proposer
// proposes the same entry again, as it does when raft refuses its own
// proposal outright. Proposing again is safe precisely because a dropped
// proposal was never appended to any log: it cannot commit twice.

// redoProposal is what the wait registry delivers (Notify) to a proposer
// whose proposal was dropped unappended: propose it again.
type redoProposal struct{}

// proposeData hands data to raft. A proposal raft refuses outright was not
// appended anywhere (no leader known, or this leader is handing over), so
// it is retried until a leader takes it, for at most two election timeouts:
// a member cut off from the cluster still answers "no leader" soon.
func (s *Server) proposeData(ctx context.Context, data []byte) error {
	give := time.Now().Add(2 * s.cfg.ElectionTimeout)
	for {
		err := s.node.Propose(ctx, data)
		if !errors.Is(err, raft.ErrProposalDropped) || time.Now().After(give) {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-s.stopping:
			return err
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// droppedIDs are the request IDs of a proposal message's normal entries.
func droppedIDs(m *raftpb.Message) []uint64 {
	var ids []uint64
	for _, e := range m.GetEntries() {
		if e.GetType() != raftpb.EntryNormal || len(e.GetData()) == 0 {
			continue
		}
		if id, ok := apply.CadreEntryID(e.GetData()); ok {
			ids = append(ids, id)
			continue
		}
		var r pb.InternalRaftRequest
		if proto.Unmarshal(e.GetData(), &r) == nil && r.GetHeader().GetID() != 0 {
			ids = append(ids, r.GetHeader().GetID())
		}
	}
	return ids
}

// proposalDropped tells the proposer of m that m was dropped here.
func (s *Server) proposalDropped(m *raftpb.Message) {
	ids := droppedIDs(m)
	from := s.cluster.Member(m.GetFrom())
	if len(ids) == 0 || from == nil || len(from.PeerURLs) == 0 {
		return
	}
	body, _ := json.Marshal(struct {
		IDs []uint64 `json:"ids"`
	}{ids})
	url := strings.TrimSuffix(from.PeerURLs[0], "/") + "/cadre/proposals/dropped"
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		req, err := http.NewRequestWithContext(ctx, "POST", url, bytes.NewReader(body))
		if err != nil {
			return
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-Cadre-Cluster-ID", membership.IDString(s.ClusterID()))
		resp, err := s.peerClient.Do(req)
		if err != nil {
			s.lg.Debug("could not tell a proposer its proposal was dropped", "member", membership.IDString(m.GetFrom()), "error", err.Error())
			return
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}()
}

func (s *Server) registerHandoffHandler(mux *http.ServeMux) {
	mux.HandleFunc("POST /cadre/proposals/dropped", func(w http.ResponseWriter, r *http.Request) {
		if cid := r.Header.Get("X-Cadre-Cluster-ID"); cid != membership.IDString(s.ClusterID()) {
			http.Error(w, fmt.Sprintf("cluster ID %q is not this member's %s", cid, membership.IDString(s.ClusterID())), http.StatusForbidden)
			return
		}
		var in struct {
			IDs []uint64 `json:"ids"`
		}
		if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&in); err != nil {
			http.Error(w, "bad dropped-proposal notice: "+err.Error(), http.StatusBadRequest)
			return
		}
		n := 0
		for _, id := range in.IDs {
			if s.reqs.Notify(id, redoProposal{}) {
				n++
			}
		}
		if n > 0 {
			s.lg.Info("proposals dropped during a leader change; proposing them again", "count", n)
		}
		w.WriteHeader(http.StatusNoContent)
	})
}
