package api

import (
	"context"
	"net/http"
	"strconv"
	"time"

	"google.golang.org/grpc/peer"

	"github.com/cadrekv/cadre/internal/membership"
)

// The membership audit trail over HTTP (`cadrectl member history`), on any
// member: GET /cadre/v1/members/history[?since=1h|RFC3339][&after=INDEX&wait=30s].
// With after and wait it is the trail's watch: the answer comes once an
// applied change with an index above after exists, or when wait runs out
// (a long poll, at most 60 s).

// historyMember is what the endpoint needs from the member.
type historyMember interface {
	MembershipHistory(since time.Time) ([]membership.AuditRecord, error)
	WaitMembershipChange(ctx context.Context, after uint64) error
}

const pathHistory = "/cadre/v1/members/history"

// callerOf names who makes a request, for the audit trail: the user (or
// certificate CommonName) when auth is on, else the client's address.
func callerOf(ctx context.Context, m Member) string {
	if m.AuthStore().Enabled() {
		if u, err := requestUser(ctx, m); err == nil && u != "" {
			return u
		}
	}
	if cn := certCommonName(ctx); cn != "" {
		return "cn=" + cn
	}
	if p, ok := peer.FromContext(ctx); ok && p.Addr != nil {
		return "client " + p.Addr.String()
	}
	return "client"
}

func registerHistoryHTTP(mux *http.ServeMux, m Member) {
	hm, ok := m.(historyMember)
	if !ok {
		return
	}
	mux.HandleFunc("GET "+pathHistory, func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		var since time.Time
		if v := q.Get("since"); v != "" {
			if d, err := time.ParseDuration(v); err == nil && d > 0 {
				since = time.Now().Add(-d)
			} else if t, err := time.Parse(time.RFC3339, v); err == nil {
				since = t
			} else {
				writeJSON(w, http.StatusBadRequest, map[string]string{"error": `invalid "since" ` + strconv.Quote(v) + `: expected a duration like 1h or an RFC 3339 time like 2026-12-03T10:00:00Z`})
				return
			}
		}
		if v := q.Get("after"); v != "" {
			after, err := strconv.ParseUint(v, 10, 64)
			wait, werr := time.ParseDuration(q.Get("wait"))
			if err != nil || werr != nil || wait <= 0 {
				writeJSON(w, http.StatusBadRequest, map[string]string{"error": `"after" takes a raft index and needs "wait", a duration like 30s`})
				return
			}
			ctx, cancel := context.WithTimeout(r.Context(), min(wait, 60*time.Second))
			_ = hm.WaitMembershipChange(ctx, after)
			cancel()
		}
		recs, err := hm.MembershipHistory(since)
		if err != nil {
			writeJSON(w, http.StatusInternalServerError, map[string]string{"error": err.Error()})
			return
		}
		if recs == nil {
			recs = []membership.AuditRecord{}
		}
		writeJSON(w, http.StatusOK, map[string]any{"records": recs})
	})
}
