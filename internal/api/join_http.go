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

// Cadre's join and replace endpoints (`cadre --join`, `cadrectl member
// replace`). Any member answers; the leader judges. Both change the
// membership, so with auth on they need the root role, from a token or
// from a client certificate whose CN is a root user (as etcd's gRPC API
// takes it).

const (
	pathJoin    = "/cadre/v1/members/join"
	pathReplace = "/cadre/v1/members/replace"
)

type joinMember interface {
	Join(ctx context.Context, req membership.JoinRequest) (*membership.JoinAnswer, error)
	ReplaceMember(ctx context.Context, req membership.ReplaceRequest) (*membership.ReplaceAnswer, error)
}

func registerJoinHTTP(mux *http.ServeMux, m Member) {
	jm, ok := m.(joinMember)
	if !ok {
		return
	}
	mux.HandleFunc("POST "+pathJoin, func(w http.ResponseWriter, r *http.Request) {
		by, ok := rootCaller(w, r, m, "joining a member")
		if !ok {
			return
		}
		var req membership.JoinRequest
		if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&req); err != nil {
			writeJSON(w, http.StatusBadRequest, errorJSON{"invalid join request: " + err.Error()})
			return
		}
		req.By = "cadre --join (" + req.Name + ", " + by + ")"
		ans, err := jm.Join(r.Context(), req)
		writeMembershipAnswer(w, ans, err)
	})
	mux.HandleFunc("POST "+pathReplace, func(w http.ResponseWriter, r *http.Request) {
		by, ok := rootCaller(w, r, m, "replacing a member")
		if !ok {
			return
		}
		var req membership.ReplaceRequest
		if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&req); err != nil {
			writeJSON(w, http.StatusBadRequest, errorJSON{"invalid replace request: " + err.Error()})
			return
		}
		req.By = by
		ans, err := jm.ReplaceMember(r.Context(), req)
		writeMembershipAnswer(w, ans, err)
	})
}

// rootCaller names the caller and, with auth on, refuses anyone but root.
func rootCaller(w http.ResponseWriter, r *http.Request, m Member, what string) (string, bool) {
	cn := ""
	if r.TLS != nil && len(r.TLS.PeerCertificates) > 0 {
		cn = r.TLS.PeerCertificates[0].Subject.CommonName
	}
	st := m.AuthStore()
	if !st.Enabled() {
		if cn != "" {
			return "cn=" + cn, true
		}
		return "client " + r.RemoteAddr, true
	}
	user, err := m.ResolveToken(r.Header.Get("Authorization"))
	if err != nil || user == "" {
		user = cn
	}
	if user == "" || !st.IsRoot(user) {
		writeJSON(w, http.StatusForbidden, errorJSON{"etcdserver: permission denied: " + what + " needs the root role (a token of a root user, or a client certificate whose CN is one)"})
		return "", false
	}
	return user, true
}

func writeMembershipAnswer(w http.ResponseWriter, ans any, err error) {
	switch {
	case err == nil:
		writeJSON(w, http.StatusOK, ans)
	case errors.Is(err, cerr.ErrInvalidArgument):
		writeJSON(w, http.StatusBadRequest, errorJSON{err.Error()})
	default:
		// Refusals keep their full text: it names the member, the reason
		// and the fix.
		msg := err.Error()
		if s, ok := status.FromError(togRPC(err)); ok && !isMembershipRefusal(err) {
			msg = s.Message()
		}
		writeJSON(w, http.StatusConflict, errorJSON{msg})
	}
}

func isMembershipRefusal(err error) bool {
	for _, e := range []error{membership.ErrNotEnoughStarted, membership.ErrUnhealthy, membership.ErrLearnerNotReady, membership.ErrNotLearner,
		membership.ErrTooManyLearners, membership.ErrBadURLs, membership.ErrIDRemoved, membership.ErrIDExists, membership.ErrIDNotFound,
		membership.ErrPeerURLExists, membership.ErrNotReplacement, membership.ErrAlreadyReplaced} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}
