package api

import (
	"encoding/json"
	"net/http"
)

// writeJSON answers v as JSON with code: Cadre's own HTTP endpoints.
func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

// errorJSON is the body of a refused request on Cadre's own endpoints.
type errorJSON struct {
	Error string `json:"error"`
}
