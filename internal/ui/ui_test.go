package ui

import (
	"io/fs"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
)

// TestAssetsOffline: the page must load nothing from another origin (no
// CDN), so it works without internet access; the CSP header forbids it too.
func TestAssetsOffline(t *testing.T) {
	external := regexp.MustCompile(`(?i)((src|href|action)\s*=\s*["']?|url\(\s*["']?|fetch\(\s*["'` + "`" + `]|import\s*\(?\s*["'])(https?:)?//`)
	n := 0
	err := fs.WalkDir(assets, "assets", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := assets.ReadFile(path)
		if err != nil {
			return err
		}
		n++
		if m := external.Find(b); m != nil {
			t.Errorf("%s refers to another origin: %q", path, m)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n < 3 {
		t.Fatalf("%d embedded files, want index.html, style.css, app.js", n)
	}
}

func TestHandler(t *testing.T) {
	h := Handler()
	for path, want := range map[string]string{
		"/ui/":          `<script src="app.js" defer></script>`,
		"/ui/app.js":    "/cadre/v1/dashboard",
		"/ui/style.css": "#verdict",
	} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
		if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), want) {
			t.Errorf("GET %s: %d, body without %q", path, rec.Code, want)
		}
		if csp := rec.Header().Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'self'") {
			t.Errorf("GET %s: Content-Security-Policy %q", path, csp)
		}
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/ui/nope.js", nil))
	if rec.Code != http.StatusNotFound {
		t.Errorf("GET /ui/nope.js: %d, want 404", rec.Code)
	}
}
