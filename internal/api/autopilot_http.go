package api

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"

	"google.golang.org/grpc/status"

	"github.com/cadrekv/cadre/internal/cerr"
	"github.com/cadrekv/cadre/internal/membership"
)

// autopilotMember is what the autopilot endpoints need from the member.
type autopilotMember interface {
	AutopilotStatus() (membership.AutopilotStatus, error)
	SetAutopilot(ctx context.Context, settings []string) (membership.Autopilot, error)
}

// Paths of the autopilot endpoints (`cadrectl autopilot get|set`).
const pathAutopilot = "/cadre/v1/autopilot"

type autopilotSetRequest struct {
	Settings []string `json:"settings"`
}

// registerAutopilotHTTP serves the replicated autopilot configuration: GET
// from any member, POST (a change, replicated through raft) by root when
// auth is on.
func registerAutopilotHTTP(mux *http.ServeMux, m Member) {
	am, ok := m.(autopilotMember)
	if !ok {
		return
	}
	mux.HandleFunc("GET "+pathAutopilot, func(w http.ResponseWriter, r *http.Request) {
		st, err := am.AutopilotStatus()
		if err != nil {
			writeJSON(w, http.StatusInternalServerError, errorJSON{err.Error()})
			return
		}
		writeJSON(w, http.StatusOK, st)
	})
	mux.HandleFunc("POST "+pathAutopilot, func(w http.ResponseWriter, r *http.Request) {
		if st := m.AuthStore(); st.Enabled() {
			user, err := m.ResolveToken(r.Header.Get("Authorization"))
			if err != nil || !st.IsRoot(user) {
				writeJSON(w, http.StatusForbidden, errorJSON{"etcdserver: permission denied: changing the autopilot configuration needs the root role"})
				return
			}
		}
		var req autopilotSetRequest
		if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&req); err != nil {
			writeJSON(w, http.StatusBadRequest, errorJSON{`invalid autopilot request: ` + err.Error() + `; expected {"settings":["key=value",...]}`})
			return
		}
		cfg, err := am.SetAutopilot(r.Context(), req.Settings)
		switch {
		case errors.Is(err, cerr.ErrInvalidArgument):
			writeJSON(w, http.StatusBadRequest, errorJSON{err.Error()})
		case err != nil:
			writeJSON(w, http.StatusServiceUnavailable, errorJSON{status.Convert(togRPC(err)).Message()})
		default:
			writeJSON(w, http.StatusOK, cfg)
		}
	})
}
