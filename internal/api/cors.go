package api

import "net/http"

// withCORS answers as etcd's client HTTP server does with its default
// --cors ("*"): every response allows any origin, and a preflight
// (OPTIONS) is answered 200 at once, so a browser page can call the JSON
// gateway. Cadre has no --cors flag, so the default is the only setting.
func withCORS(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Add("Access-Control-Allow-Methods", "POST, GET, OPTIONS, PUT, DELETE")
		h.Add("Access-Control-Allow-Origin", "*")
		h.Add("Access-Control-Allow-Headers", "accept, content-type, authorization")
		if r.Method == http.MethodOptions {
			w.WriteHeader(http.StatusOK)
			return
		}
		next.ServeHTTP(w, r)
	})
}
