package api

import (
	"encoding/json"
	"io"
	"net/http"

	"google.golang.org/grpc/status"

	"github.com/cadrekv/cadre/internal/membership"
)

// Cadre's own members endpoints, next to the etcd services: a dry run of a
// membership change, and every member's replication progress. Any member
// answers; the leader judges.

type dryRunRequest struct {
	Action    string   `json:"action"`
	ID        string   `json:"id"`
	Name      string   `json:"name"`
	PeerURLs  []string `json:"peerURLs"`
	IsLearner bool     `json:"isLearner"`
}

var dryRunActions = map[string]membership.ChangeKind{
	"add":     membership.ChangeAdd,
	"remove":  membership.ChangeRemove,
	"update":  membership.ChangeUpdate,
	"promote": membership.ChangePromote,
}

func registerMembersHTTP(mux *http.ServeMux, m Member) {
	mux.HandleFunc("POST /cadre/v1/members/dry-run", func(w http.ResponseWriter, r *http.Request) {
		var req dryRunRequest
		if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&req); err != nil {
			writeJSON(w, http.StatusBadRequest, errorJSON{"invalid dry-run request: " + err.Error()})
			return
		}
		kind, ok := dryRunActions[req.Action]
		if !ok {
			writeJSON(w, http.StatusBadRequest, errorJSON{`invalid dry-run request: "action" must be add, remove, update or promote, not "` + req.Action + `"`})
			return
		}
		var id uint64
		if req.ID != "" {
			var err error
			if id, err = membership.ParseID(req.ID); err != nil {
				writeJSON(w, http.StatusBadRequest, errorJSON{err.Error()})
				return
			}
		}
		res, err := m.ChangeMembers(r.Context(), membership.Change{Kind: kind, ID: id, PeerURLs: req.PeerURLs, IsLearner: req.IsLearner}, true)
		if err != nil {
			writeJSON(w, http.StatusServiceUnavailable, errorJSON{status.Convert(togRPC(err)).Message()})
			return
		}
		writeJSON(w, http.StatusOK, res.Verdict)
	})
	mux.HandleFunc("GET /cadre/v1/members/progress", func(w http.ResponseWriter, r *http.Request) {
		p, err := m.MembersProgress(r.Context())
		if err != nil {
			writeJSON(w, http.StatusServiceUnavailable, errorJSON{status.Convert(togRPC(err)).Message()})
			return
		}
		writeJSON(w, http.StatusOK, p)
	})
}
