package framework

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// EtcdVersion is the etcd release whose etcdctl (and server, for comparison
// tests) the e2e tests run against Cadre.
const EtcdVersion = "v3.7.3"

// Environment variables naming prebuilt etcd tools or their cache.
const (
	EnvEtcdctl  = "ETCDCTL_BIN"
	EnvEtcd     = "ETCD_BIN"
	EnvEtcdutl  = "ETCDUTL_BIN"
	EnvToolsDir = "CADRE_TOOLS_DIR"
)

const (
	toolBuildTimeout = 10 * time.Minute
	// lockWait bounds how long we wait for another test binary building the
	// same tool; it is longer than one build.
	lockWait = toolBuildTimeout + time.Minute
)

type etcdTool struct {
	env    string // variable naming a prebuilt binary
	name   string // binary file name in the cache
	module string // module path to build (a main package at its root)
}

var (
	toolEtcdctl = etcdTool{env: EnvEtcdctl, name: "etcdctl", module: "go.etcd.io/etcd/etcdctl/v3"}
	toolEtcd    = etcdTool{env: EnvEtcd, name: "etcd", module: "go.etcd.io/etcd/server/v3"}
	toolEtcdutl = etcdTool{env: EnvEtcdutl, name: "etcdutl", module: "go.etcd.io/etcd/etcdutl/v3"}
)

// Etcdutl returns the path of a real etcdutl v3.7.3 ($ETCDUTL_BIN or built
// like Etcdctl), for tests of the snapshot files it reads and restores.
func Etcdutl(t testing.TB) string {
	t.Helper()
	return toolPath(t, toolEtcdutl)
}

// Etcdctl returns the path of a real etcdctl v3.7.3: $ETCDCTL_BIN if set,
// otherwise a binary built once from the Go module proxy into ToolsDir.
func Etcdctl(t testing.TB) string {
	t.Helper()
	return toolPath(t, toolEtcdctl)
}

// EtcdServer returns the path of a real etcd v3.7.3 server ($ETCD_BIN or
// built like Etcdctl). Only optional comparison tests use it.
func EtcdServer(t testing.TB) string {
	t.Helper()
	return toolPath(t, toolEtcd)
}

// ToolsDir is where etcd tools are built and cached: $CADRE_TOOLS_DIR, or
// <user cache dir>/cadre-tools/etcd-v3.7.3.
func ToolsDir() (string, error) {
	if d := os.Getenv(EnvToolsDir); d != "" {
		return filepath.Abs(d)
	}
	c, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("no cache dir for etcd tools (%w); set %s", err, EnvToolsDir)
	}
	return filepath.Join(c, "cadre-tools", "etcd-"+EtcdVersion), nil
}

func toolPath(t testing.TB, tool etcdTool) string {
	t.Helper()
	if p := os.Getenv(tool.env); p != "" {
		return mustExecutable(t, tool.env, p)
	}
	dir, err := ToolsDir()
	if err != nil {
		t.Fatal(err)
	}
	p, err := buildTool(dir, tool)
	if err != nil {
		t.Fatalf("building %s %s from the module proxy: %v (or set %s to a prebuilt binary)",
			tool.name, EtcdVersion, err, tool.env)
	}
	return p
}

// buildTool builds tool.module at EtcdVersion into dir through a throwaway
// module. `go install pkg@version` refuses these modules because their
// go.mod has replace directives; building them as a dependency of another
// module ignores those directives and works. A lock file serialises
// concurrent test binaries; the binary is written under a temporary name and
// renamed, so a present binary is always complete.
func buildTool(dir string, tool etcdTool) (string, error) {
	bin := filepath.Join(dir, tool.name)
	if isExecutable(bin) {
		return bin, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	unlock, err := lockFile(filepath.Join(dir, ".lock"), lockWait)
	if err != nil {
		return "", err
	}
	defer unlock()
	if isExecutable(bin) { // built by another process while we waited
		return bin, nil
	}
	gomod := "module etcdtools\n\ngo 1.26.8\n"
	tools := "//go:build tools\n\npackage etcdtools\n\nimport (\n" +
		"\t_ \"go.etcd.io/etcd/etcdctl/v3\"\n" +
		"\t_ \"go.etcd.io/etcd/etcdutl/v3\"\n" +
		"\t_ \"go.etcd.io/etcd/server/v3\"\n)\n"
	// go.mod is kept once written: `go get` adds the requirements to it,
	// and the next tool built here reuses them.
	if err := writeIfMissing(filepath.Join(dir, "go.mod"), gomod); err != nil {
		return "", err
	}
	if err := writeIfMissing(filepath.Join(dir, "tools.go"), tools); err != nil {
		return "", err
	}
	env := goEnv("GOFLAGS=-mod=mod")
	steps := [][]string{
		{"go", "get", tool.module + "@" + EtcdVersion},
		{"go", "build", "-o", bin + ".tmp", tool.module},
	}
	for _, s := range steps {
		res := runCommand(dir, toolBuildTimeout, env, nil, s[0], s[1:]...)
		if res.Err != nil || res.Code != 0 {
			return "", fmt.Errorf("%q in %s: %s", s, dir, res)
		}
	}
	if err := os.Rename(bin+".tmp", bin); err != nil {
		return "", err
	}
	return bin, nil
}

func isExecutable(p string) bool {
	st, err := os.Stat(p)
	return err == nil && !st.IsDir() && st.Mode()&0o111 != 0
}

func writeIfMissing(p, content string) error {
	if _, err := os.Stat(p); err == nil {
		return nil
	}
	return os.WriteFile(p, []byte(content), 0o644)
}

// lockFile takes an exclusive flock on p, polling for at most wait.
func lockFile(p string, wait time.Duration) (unlock func(), err error) {
	f, err := os.OpenFile(p, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, err
	}
	deadline := time.Now().Add(wait)
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			break
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) || time.Now().After(deadline) {
			_ = f.Close()
			return nil, fmt.Errorf("locking %s (another build may be stuck; remove the file): %w", p, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	return func() {
		_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		_ = f.Close()
	}, nil
}
