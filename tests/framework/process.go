package framework

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Result is what a finished (or timed out) command left behind.
type Result struct {
	Stdout string
	Stderr string
	// Code is the exit code; -1 when the process was killed by a signal,
	// including the kill sent on timeout.
	Code int
	// TimedOut is true when the command ran past its timeout and was killed.
	TimedOut bool
	// Err is set when the command could not be started at all.
	Err error
}

// String summarises a Result for failure messages.
func (r Result) String() string {
	var b strings.Builder
	b.WriteString("exit ")
	b.WriteString(strconv.Itoa(r.Code))
	if r.TimedOut {
		b.WriteString(" (timed out)")
	}
	if r.Err != nil {
		b.WriteString(" (" + r.Err.Error() + ")")
	}
	b.WriteString("\nstdout:\n" + r.Stdout + "\nstderr:\n" + r.Stderr)
	return b.String()
}

// DefaultProcessTimeout bounds RunProcess.
const DefaultProcessTimeout = 20 * time.Second

// RunProcess runs bin with args and extra env (appended to a copy of the
// test's environment with ETCD_* and CADRE_* removed, so the caller's shell
// cannot change the server's configuration) and waits at most
// DefaultProcessTimeout. A process still running then is killed and the
// Result has TimedOut set.
func RunProcess(t testing.TB, bin string, args []string, env []string) Result {
	t.Helper()
	return RunProcessIn(t, "", DefaultProcessTimeout, bin, args, env, nil)
}

// RunProcessIn is RunProcess with a working directory, timeout and stdin.
func RunProcessIn(t testing.TB, dir string, timeout time.Duration, bin string, args, env []string, stdin io.Reader) Result {
	t.Helper()
	res := runCommand(dir, timeout, append(childEnv(), env...), stdin, bin, args...)
	if res.Err != nil {
		t.Fatalf("running %s %q: %v", bin, args, res.Err)
	}
	return res
}

func runCommand(dir string, timeout time.Duration, env []string, stdin io.Reader, bin string, args ...string) Result {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Dir = dir
	cmd.Env = env
	cmd.Stdin = stdin
	setDeathSignal(cmd)
	killGroupOnCancel(cmd)
	// Without WaitDelay a killed process whose children keep the output
	// pipes open would block Wait forever.
	cmd.WaitDelay = 5 * time.Second
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	res := Result{Stdout: stdout.String(), Stderr: stderr.String(), TimedOut: ctx.Err() != nil}
	var exitErr *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &exitErr):
		res.Code = exitErr.ExitCode()
	case res.TimedOut:
		res.Code = -1
	default:
		res.Code = -1
		res.Err = err
	}
	return res
}

// childEnv is the test's environment without variables that configure etcd
// or Cadre, plus GOWORK=off for go commands.
func childEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "ETCD_") || strings.HasPrefix(kv, "CADRE_") || strings.HasPrefix(kv, "ETCDCTL_") {
			continue
		}
		env = append(env, kv)
	}
	return env
}

// goEnv is the environment for the go tool: GOWORK off, so a go.work above
// the module or the tools cache cannot change what gets built.
func goEnv(extra ...string) []string {
	return append(append(os.Environ(), "GOWORK=off"), extra...)
}
