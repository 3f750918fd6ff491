package api

import (
	"context"
	"encoding/json"
	"io"
	"net/http"

	"github.com/cadrekv/cadre/internal/ui"
)

// dashboardMember is what the dashboard endpoint needs from the member.
type dashboardMember interface {
	Dashboard(ctx context.Context) (*ui.Dashboard, error)
}

// Paths of the dashboard: the page (internal/ui), its data, and its login.
const (
	pathDashboard      = "/cadre/v1/dashboard"
	pathUI             = "/ui/"
	pathUIAuthenticate = "/ui/authenticate"
)

type uiAuthenticateRequest struct {
	Name     string `json:"name"`
	Password string `json:"password"`
}

// registerDashboardHTTP serves the dashboard page at /ui/ (/ui redirects
// there), its data at /cadre/v1/dashboard (any member answers; gatewayAuth
// asks for a token when auth is on) and the login the page uses when auth is on. The login lives under /ui/
// because gatewayAuth closes the /v3/ JSON gateway (so /v3/auth/authenticate)
// while auth is on; it takes and returns what that endpoint does.
func registerDashboardHTTP(mux *http.ServeMux, m Member) {
	dm, ok := m.(dashboardMember)
	if !ok {
		return
	}
	// The page polls: its answers must never come from a cache.
	writeFresh := func(w http.ResponseWriter, code int, v any) {
		w.Header().Set("Cache-Control", "no-store")
		writeJSON(w, code, v)
	}
	mux.Handle(pathUI, ui.Handler())
	mux.Handle("GET /ui", http.RedirectHandler(pathUI, http.StatusMovedPermanently))
	mux.HandleFunc("GET "+pathDashboard, func(w http.ResponseWriter, r *http.Request) {
		d, err := dm.Dashboard(r.Context())
		if err != nil {
			writeFresh(w, http.StatusServiceUnavailable, errorJSON{reason(err)})
			return
		}
		writeFresh(w, http.StatusOK, d)
	})
	mux.HandleFunc("POST "+pathUIAuthenticate, func(w http.ResponseWriter, r *http.Request) {
		var req uiAuthenticateRequest
		if err := json.NewDecoder(io.LimitReader(r.Body, 1<<16)).Decode(&req); err != nil {
			writeFresh(w, http.StatusBadRequest, errorJSON{`invalid login: ` + err.Error() + `; expected {"name":"...","password":"..."}`})
			return
		}
		tok, err := m.Authenticate(r.Context(), req.Name, req.Password)
		if err != nil {
			writeFresh(w, http.StatusUnauthorized, errorJSON{reason(err)})
			return
		}
		writeFresh(w, http.StatusOK, map[string]string{"token": tok})
	})
}
