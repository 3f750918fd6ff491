package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"
)

// Versions compared against. etcd's benchmark tool lives in the root
// module go.etcd.io/etcd/v3 (package tools/benchmark), whose newest
// release on the module proxy is v3.7.1.
const (
	etcdVersion      = "v3.7.3"
	etcdModule       = "go.etcd.io/etcd/server/v3"
	benchToolVersion = "v3.7.1"
	benchToolModule  = "go.etcd.io/etcd/v3"
	benchToolPkg     = "go.etcd.io/etcd/v3/tools/benchmark"
	buildTimeout     = 10 * time.Minute
)

// ErrBuild marks a binary that could not be built.
var ErrBuild = errors.New("build")

// toolsCacheDir is where etcd binaries are built and kept between runs:
// $CADRE_BENCH_TOOLS_DIR or <user cache>/cadre-bench.
func toolsCacheDir() (string, error) {
	if d := os.Getenv("CADRE_BENCH_TOOLS_DIR"); d != "" {
		return filepath.Abs(d)
	}
	c, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("%w: no user cache dir (%v); set CADRE_BENCH_TOOLS_DIR", ErrBuild, err)
	}
	return filepath.Join(c, "cadre-bench"), nil
}

// buildEtcdTool builds pkg (a main package of module mod@version) in a
// throwaway module of its own under cacheDir/name-version, once: `go
// install pkg@version` refuses etcd's modules because of their replace
// directives, while building them as a dependency ignores those. Each tool
// gets its own module so the server and the benchmark tool each build with
// their own release's dependency versions. No etcd code lands in this repo.
func buildEtcdTool(ctx context.Context, cacheDir, name, mod, version, pkg string, logf func(string, ...any)) (string, error) {
	dir := filepath.Join(cacheDir, name+"-"+version)
	bin := filepath.Join(dir, name)
	if isExecutable(bin) {
		return bin, nil
	}
	logf("building %s %s from the Go module proxy in %s (once; cached)", name, version, dir)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	files := map[string]string{
		"go.mod":   "module cadrebench" + name + "\n\ngo 1.26.8\n",
		"tools.go": "//go:build tools\n\npackage tools\n\nimport _ \"" + pkg + "\"\n",
	}
	for f, content := range files {
		if err := os.WriteFile(filepath.Join(dir, f), []byte(content), 0o644); err != nil {
			return "", err
		}
	}
	env := append(os.Environ(), "GOWORK=off", "GOFLAGS=-mod=mod", "CGO_ENABLED=0")
	steps := [][]string{
		{"go", "get", mod + "@" + version},
		{"go", "build", "-o", bin + ".tmp", pkg},
	}
	for _, s := range steps {
		if err := runGo(ctx, dir, env, s...); err != nil {
			return "", err
		}
	}
	// Renamed into place only when complete, so a present binary is whole.
	if err := os.Rename(bin+".tmp", bin); err != nil {
		return "", err
	}
	return bin, nil
}

// buildCadre builds ./cmd/cadre of this module into dir.
func buildCadre(ctx context.Context, moduleRoot, dir string) (string, error) {
	bin := filepath.Join(dir, "cadre")
	env := append(os.Environ(), "GOWORK=off")
	if err := runGo(ctx, moduleRoot, env, "go", "build", "-o", bin, "./cmd/cadre"); err != nil {
		return "", err
	}
	return bin, nil
}

func runGo(ctx context.Context, dir string, env []string, args ...string) error {
	ctx, cancel := context.WithTimeout(ctx, buildTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, args[0], args[1:]...)
	cmd.Dir = dir
	cmd.Env = env
	// The go command's own children (compilers) die with its group.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%w: %q in %s: %v\n%s", ErrBuild, args, dir, err, out.String())
	}
	return nil
}

func isExecutable(p string) bool {
	st, err := os.Stat(p)
	return err == nil && !st.IsDir() && st.Mode()&0o111 != 0
}

// moduleRoot walks up from the working directory to this module's go.mod.
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for range 64 {
		if b, err := os.ReadFile(filepath.Join(dir, "go.mod")); err == nil && bytes.HasPrefix(b, []byte("module github.com/cadrekv/cadre\n")) {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			break
		}
		dir = parent
	}
	return "", fmt.Errorf("%w: no github.com/cadrekv/cadre go.mod above the working directory; run cadre-bench inside the Cadre checkout", ErrBuild)
}
