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

	"github.com/cadrekv/cadre/internal/cerr"
	"github.com/cadrekv/cadre/internal/lease"
	"github.com/cadrekv/cadre/internal/membership"
)

// Membership requests reach the leader over the peer port, like etcd's
// promote forwarding: the leader alone judges a change.

// forwardableErrors are the errors that keep their identity across the
// forwarding hop; the leader names one, the caller rebuilds it.
var forwardableErrors = map[string]error{
	"not-enough-started": membership.ErrNotEnoughStarted,
	"unhealthy":          membership.ErrUnhealthy,
	"learner-not-ready":  membership.ErrLearnerNotReady,
	"not-learner":        membership.ErrNotLearner,
	"too-many-learners":  membership.ErrTooManyLearners,
	"bad-urls":           membership.ErrBadURLs,
	"id-removed":         membership.ErrIDRemoved,
	"id-exists":          membership.ErrIDExists,
	"id-not-found":       membership.ErrIDNotFound,
	"peer-url-exists":    membership.ErrPeerURLExists,
	"not-replacement":    membership.ErrNotReplacement,
	"already-replaced":   membership.ErrAlreadyReplaced,
	"join-refused":       ErrJoinRefused,
	"no-leader":          cerr.ErrNoLeader,
	"lease-not-found":    lease.ErrLeaseNotFound,
	"lease-not-primary":  lease.ErrNotPrimary,
	"timeout":            cerr.ErrTimeout,
	"stopped":            cerr.ErrStopped,
	"not-leader":         cerr.ErrNotLeader,
}

type forwardError struct {
	Kind    string `json:"kind"`
	Message string `json:"message"`
}

type changeRequest struct {
	Kind      membership.ChangeKind `json:"kind"`
	ID        string                `json:"id"`
	PeerURLs  []string              `json:"peerURLs"`
	IsLearner bool                  `json:"isLearner"`
	DryRun    bool                  `json:"dryRun"`
	By        string                `json:"by,omitempty"`
	// The intents an add records, and the voter a swap removes.
	AutoPromote bool   `json:"autoPromote,omitempty"`
	Replaces    string `json:"replaces,omitempty"`
	Old         string `json:"old,omitempty"`
}

// optionalID formats an ID for a changeRequest ("" for none).
func optionalID(id uint64) string {
	if id == 0 {
		return ""
	}
	return membership.IDString(id)
}

// parseOptionalID reverses optionalID.
func parseOptionalID(s string) (uint64, error) {
	if s == "" {
		return 0, nil
	}
	return membership.ParseID(s)
}

func (s *Server) registerForwardHandlers(mux *http.ServeMux) {
	s.registerLeaseHandlers(mux)
	mux.HandleFunc("POST /cadre/members/change", func(w http.ResponseWriter, r *http.Request) {
		var req changeRequest
		if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&req); err != nil {
			http.Error(w, "bad membership change request: "+err.Error(), http.StatusBadRequest)
			return
		}
		id, err1 := parseOptionalID(req.ID)
		replaces, err2 := parseOptionalID(req.Replaces)
		old, err3 := parseOptionalID(req.Old)
		if err := errors.Join(err1, err2, err3); err != nil {
			http.Error(w, "bad membership change request: "+err.Error(), http.StatusBadRequest)
			return
		}
		if !s.node.IsLeader() {
			// Never forward twice: the caller retries against the new leader.
			writeForwardError(w, cerr.ErrNotLeader)
			return
		}
		res, err := s.ChangeMembers(r.Context(), membership.Change{Kind: req.Kind, ID: id, PeerURLs: req.PeerURLs, IsLearner: req.IsLearner, By: req.By,
			AutoPromote: req.AutoPromote, Replaces: replaces, Old: old}, req.DryRun)
		if err != nil {
			writeForwardError(w, err)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(res)
	})
	mux.HandleFunc("GET /cadre/members/progress", func(w http.ResponseWriter, r *http.Request) {
		if !s.node.IsLeader() {
			writeForwardError(w, cerr.ErrNotLeader)
			return
		}
		p, err := s.MembersProgress(r.Context())
		if err != nil {
			writeForwardError(w, err)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(p)
	})
}

func writeForwardError(w http.ResponseWriter, err error) {
	fe := forwardError{Kind: "other", Message: err.Error()}
	for k, e := range forwardableErrors {
		if errors.Is(err, e) {
			fe.Kind = k
			break
		}
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusConflict)
	_ = json.NewEncoder(w).Encode(fe)
}

// leaderPeerURL returns a peer URL of the current leader.
func (s *Server) leaderPeerURL() (string, error) {
	lead := s.node.Leader()
	if lead == 0 {
		return "", cerr.ErrNoLeader
	}
	m := s.cluster.Member(lead)
	if m == nil || len(m.PeerURLs) == 0 {
		return "", cerr.ErrNoLeader
	}
	return strings.TrimSuffix(m.PeerURLs[0], "/"), nil
}

func (s *Server) forwardChange(ctx context.Context, c membership.Change, dryRun bool) (*membership.ChangeResult, error) {
	req := changeRequest{Kind: c.Kind, ID: optionalID(c.ID), PeerURLs: c.PeerURLs, IsLearner: c.IsLearner, DryRun: dryRun, By: c.By,
		AutoPromote: c.AutoPromote, Replaces: optionalID(c.Replaces), Old: optionalID(c.Old)}
	var res membership.ChangeResult
	if err := s.forward(ctx, http.MethodPost, "/cadre/members/change", req, &res); err != nil {
		return nil, err
	}
	return &res, nil
}

func (s *Server) forwardProgress(ctx context.Context) (*membership.Progress, error) {
	var p membership.Progress
	if err := s.forward(ctx, http.MethodGet, "/cadre/members/progress", nil, &p); err != nil {
		return nil, err
	}
	return &p, nil
}

func (s *Server) forward(ctx context.Context, method, path string, body, out any) error {
	base, err := s.leaderPeerURL()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, s.reqTimout)
	defer cancel()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, base+path, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Cadre-Cluster-ID", membership.IDString(s.ClusterID()))
	resp, err := s.peerClient.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return cerr.ErrTimeout
		}
		return fmt.Errorf("forwarding to the leader at %s: %w", base, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusConflict {
		var fe forwardError
		if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&fe); err != nil {
			return fmt.Errorf("leader answered %s with an unreadable error: %w", resp.Status, err)
		}
		if e, ok := forwardableErrors[fe.Kind]; ok {
			detail := strings.TrimPrefix(fe.Message, e.Error())
			return fmt.Errorf("%w%s", e, detail)
		}
		return errors.New(fe.Message)
	}
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return fmt.Errorf("leader answered %s: %s", resp.Status, strings.TrimSpace(string(b)))
	}
	return json.NewDecoder(io.LimitReader(resp.Body, 16<<20)).Decode(out)
}
