package framework

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// Environment variables read by the framework.
const (
	// EnvServer names a server binary to test instead of building ./cmd/cadre
	// (for example the real etcd, to validate the tests themselves).
	EnvServer = "CADRE_E2E_SERVER"
	// EnvCadrectl names a cadrectl binary to use instead of building one.
	EnvCadrectl = "CADRE_E2E_CADRECTL"
)

// buildTimeout bounds one `go build` of a command of this module.
const buildTimeout = 5 * time.Minute

// builds caches the binaries built by this test binary. It is the one piece
// of package state: building once per test binary is the point of it.
var builds = struct {
	mu   sync.Mutex
	dir  string
	tags string // go build -tags, set by Main
	bins map[string]buildResult
}{bins: map[string]buildResult{}}

type buildResult struct {
	path string
	err  error
}

// Main runs the tests of a package and then removes the binaries built for
// them. Use it as: func TestMain(m *testing.M) { os.Exit(framework.Main(m)) }
// Build tags (e.g. "faultinject") apply to every binary built for them.
func Main(m *testing.M, tags ...string) int {
	builds.mu.Lock()
	builds.tags = strings.Join(tags, ",")
	builds.mu.Unlock()
	code := m.Run()
	builds.mu.Lock()
	defer builds.mu.Unlock()
	if builds.dir != "" {
		_ = os.RemoveAll(builds.dir)
	}
	return code
}

// IsCadre reports whether the server under test is Cadre built from this
// module (false when CADRE_E2E_SERVER points at another binary).
func IsCadre() bool { return os.Getenv(EnvServer) == "" }

// SkipUnlessCadre skips tests of Cadre-specific behaviour (error text, exit
// codes, default data dir name) when another server is under test.
func SkipUnlessCadre(t testing.TB) {
	t.Helper()
	if !IsCadre() {
		t.Skipf("Cadre-only test: %s=%s is not Cadre", EnvServer, os.Getenv(EnvServer))
	}
}

// Server returns the path of the server binary under test.
func Server(t testing.TB) string {
	t.Helper()
	if p := os.Getenv(EnvServer); p != "" {
		return mustExecutable(t, EnvServer, p)
	}
	return build(t, "./cmd/cadre", "cadre")
}

// Cadrectl returns the path of the cadrectl binary of this module.
func Cadrectl(t testing.TB) string {
	t.Helper()
	if p := os.Getenv(EnvCadrectl); p != "" {
		return mustExecutable(t, EnvCadrectl, p)
	}
	return build(t, "./cmd/cadrectl", "cadrectl")
}

// Binaries returns the server and cadrectl binaries. When another server is
// under test (CADRE_E2E_SERVER) cadrectl is not built and is returned empty.
func Binaries(t testing.TB) (server, cadrectl string) {
	t.Helper()
	server = Server(t)
	if IsCadre() || os.Getenv(EnvCadrectl) != "" {
		cadrectl = Cadrectl(t)
	}
	return server, cadrectl
}

func mustExecutable(t testing.TB, env, p string) string {
	t.Helper()
	abs, err := filepath.Abs(p)
	if err != nil {
		t.Fatalf("%s=%q: %v", env, p, err)
	}
	st, err := os.Stat(abs)
	if err != nil || st.IsDir() || st.Mode()&0o111 == 0 {
		t.Fatalf("%s=%q is not an executable file (stat: %v); point it at a built binary", env, p, err)
	}
	return abs
}

// ModuleRoot walks up from the working directory to the directory holding
// go.mod, which is where `go build ./cmd/...` must run.
func ModuleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for range 64 {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			break
		}
		dir = parent
	}
	return "", errors.New("no go.mod found above the working directory; run the tests inside the module")
}

// build compiles pkg of this module once per test binary. A failure is
// cached too, so every test reports it quickly instead of rebuilding.
func build(t testing.TB, pkg, name string) string {
	t.Helper()
	builds.mu.Lock()
	defer builds.mu.Unlock()
	if r, ok := builds.bins[pkg]; ok {
		if r.err != nil {
			t.Fatal(r.err)
		}
		return r.path
	}
	path, err := buildLocked(pkg, name)
	builds.bins[pkg] = buildResult{path: path, err: err}
	if err != nil {
		t.Fatal(err)
	}
	return path
}

func buildLocked(pkg, name string) (string, error) {
	root, err := ModuleRoot()
	if err != nil {
		return "", err
	}
	if builds.dir == "" {
		d, err := os.MkdirTemp("", "cadre-e2e-bin-")
		if err != nil {
			return "", err
		}
		builds.dir = d
	}
	out := filepath.Join(builds.dir, name)
	args := []string{"build", "-o", out}
	if builds.tags != "" {
		args = append(args, "-tags", builds.tags)
	}
	res := runCommand(root, buildTimeout, goEnv(), nil, "go", append(args, pkg)...)
	if res.Err != nil || res.Code != 0 {
		return "", fmt.Errorf("go build -o %s %s in %s failed (exit %d, %v):\n%s%s",
			out, pkg, root, res.Code, res.Err, res.Stdout, res.Stderr)
	}
	return out, nil
}
