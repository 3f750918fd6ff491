package main

// Streaming commands (watch, lock and elect holding on) compared between
// etcdctl and cadrectl. Both run as processes (cadrectl built from this
// package): each is started, left until its output has been idle for a
// moment, then interrupted with SIGINT as a user would, and its output
// and exit code are compared with the other's. A tool that prints too
// little, too much or in another order fails the comparison.

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/cadrekv/cadre/tests/framework"
)

// Bounds of one streaming run.
const (
	streamIdle     = 500 * time.Millisecond // output this still is complete
	streamMaxWait  = 10 * time.Second       // for the first output and for idleness
	streamStopWait = 10 * time.Second       // for the exit after SIGINT
)

// streamCase is one streaming command compared between the tools.
type streamCase struct {
	name  string
	args  []string
	needs []string // services the server must implement: "Lease", "Watch"
	// prepare puts the store in the same state before each run and
	// returns arguments to append (or, with stdin set, to pass to it).
	prepare func(t *testing.T, cli *clientv3.Client) []string
	// stdin, if set, builds the input written to the tool; stdin stays
	// open until the tool is stopped.
	stdin func(extra []string) string
	// background, if set, is run with the same tool first (until its
	// output is idle) and stopped after the case; its output is compared
	// too.
	background []string
	norm       func(string) string
}

func TestCompatStreaming(t *testing.T) {
	env := startCompatServer(t)
	requireService(t, env.cli, "Watch")
	cadrectl := framework.Cadrectl(t)

	// history writes the events the watch cases replay and returns the
	// revision of the first.
	history := func(t *testing.T, cli *clientv3.Client) int64 {
		mustDo(t, cli, clientv3.OpDelete("sw/", clientv3.WithPrefix()))
		rev := mustDo(t, cli, clientv3.OpPut("sw/a", "1")).Put().Header.Revision
		mustDo(t, cli, clientv3.OpPut("sw/a", "2"))
		mustDo(t, cli, clientv3.OpPut("sw/b", "x y"))
		mustDo(t, cli, clientv3.OpDelete("sw/a"))
		mustDo(t, cli, clientv3.OpPut("sw/c", "\xff"))
		return rev
	}
	fromRev := func(t *testing.T, cli *clientv3.Client) []string {
		return []string{"--rev", strconv.FormatInt(history(t, cli), 10)}
	}
	var cases []streamCase
	for _, f := range []string{"simple", "json", "fields", "protobuf"} {
		norm := maskRevisions
		if f == "protobuf" { // revisions are binary in it: compare the length
			norm = func(s string) string { return strconv.Itoa(len(s)) }
		}
		cases = append(cases, streamCase{name: "watch --prefix --prev-kv " + f,
			args: []string{"watch", "sw/", "--prefix", "--prev-kv", "-w", f}, prepare: fromRev, norm: norm})
	}
	cases = append(cases,
		streamCase{name: "watch range --hex", args: []string{"watch", "sw/a", "sw/c", "--hex"}, prepare: fromRev},
		streamCase{name: "watch key", args: []string{"watch", "sw/a"}, prepare: fromRev},
		streamCase{name: "watch exec", prepare: fromRev,
			args: []string{"watch", "sw/", "--prefix", "--", "sh", "-c",
				`echo "cmd $ETCD_WATCH_EVENT_TYPE $ETCD_WATCH_KEY $ETCD_WATCH_VALUE ${ETCD_WATCH_REVISION:+rev}"`}},
		streamCase{name: "watch exec failing", prepare: fromRev, args: []string{"watch", "sw/a", "--", "false"}},
		streamCase{name: "watch interactive", args: []string{"watch", "-i"}, prepare: fromRev,
			stdin: func(extra []string) string {
				return "bogus\n\nwatch\nwatch a b --prefix\nwatch sw/ --prefix --prev-kv " + strings.Join(extra, " ") + "\n"
			}},
		streamCase{name: "watch interactive exec", args: []string{"watch", "-i"}, prepare: fromRev,
			stdin: func(extra []string) string {
				return "watch sw/a " + strings.Join(extra, " ") + " -- sh -c 'echo cmd $ETCD_WATCH_KEY'\n"
			}},
		streamCase{name: "lock held", args: []string{"lock", "slock"}, needs: []string{"Lease"}, norm: maskLeases},
		streamCase{name: "lock held json", args: []string{"lock", "slock", "-w", "json"}, needs: []string{"Lease"}, norm: maskSessionKeys},
		streamCase{name: "elect listen", args: []string{"elect", "--listen", "myel"}, needs: []string{"Lease"},
			background: []string{"elect", "myel", "prop1"}, norm: maskLeases},
		streamCase{name: "elect listen fields", args: []string{"elect", "-l", "myel", "-w", "fields"}, needs: []string{"Lease"},
			background: []string{"elect", "myel", "prop 2"}, norm: maskLeases},
	)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { env.compareStream(t, cadrectl, c) })
	}
}

func (s *compatServer) compareStream(t *testing.T, cadrectl string, c streamCase) {
	for _, svc := range c.needs {
		requireService(t, s.cli, svc)
	}
	run := func(bin string) result {
		var extra []string
		if c.prepare != nil {
			extra = c.prepare(t, s.cli)
		}
		args, stdin := c.args, ""
		if c.stdin != nil {
			stdin = c.stdin(extra)
		} else if len(extra) > 0 {
			// Right after the command name: before any "-- command".
			args = append(append(append([]string(nil), args[0]), extra...), args[1:]...)
		}
		var bg *stream
		if c.background != nil {
			bg = s.startStream(t, bin, c.background, "")
			bg.waitIdle(t)
		}
		main := s.startStream(t, bin, args, stdin)
		main.waitIdle(t)
		r := main.stop(t)
		if bg != nil {
			b := bg.stop(t)
			r.stdout += "--- background ---\n" + b.stdout
			r.stderr += "\n" + b.stderr
			r.code = r.code*1000 + b.code
		}
		if c.norm != nil {
			r.stdout, r.stderr = c.norm(r.stdout), c.norm(r.stderr)
		}
		r.stderr = streamErrors(r.stderr)
		return r
	}
	want := run(s.etcdctl)
	got := run(cadrectl)
	if want.stdout == "" {
		t.Errorf("etcdctl printed nothing: the case tests nothing")
	}
	if got.code != want.code {
		t.Errorf("exit code: cadrectl %d, etcdctl %d", got.code, want.code)
	}
	if got.stdout != want.stdout {
		t.Errorf("stdout differs\ncadrectl:\n%s\netcdctl:\n%s", got.stdout, want.stdout)
	}
	if got.stderr != want.stderr {
		t.Errorf("reported errors differ\ncadrectl:\n%s\netcdctl:\n%s", got.stderr, want.stderr)
	}
}

// streamErrors is stderr without etcdctl's client logs (JSON lines): the
// complaints of interactive mode and failing commands are compared too.
func streamErrors(s string) string {
	var keep []string
	for _, line := range strings.Split(s, "\n") {
		if !strings.HasPrefix(line, "{") {
			keep = append(keep, line)
		}
	}
	return strings.Join(keep, "\n")
}

// stream is one running tool.
type stream struct {
	cmd    *exec.Cmd
	cancel context.CancelFunc
	stdin  io.WriteCloser
	out    syncBuffer
	errOut syncBuffer
	done   chan struct{}
	err    error // of Wait, once done is closed
}

func (s *compatServer) startStream(t *testing.T, bin string, args []string, stdin string) *stream {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), streamMaxWait+streamStopWait+5*time.Second)
	st := &stream{cancel: cancel, done: make(chan struct{})}
	st.cmd = exec.CommandContext(ctx, bin, append([]string{"--endpoints", s.ep}, args...)...)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "ETCDCTL_") && !strings.HasPrefix(kv, "CADRECTL_") {
			st.cmd.Env = append(st.cmd.Env, kv)
		}
	}
	st.cmd.Stdout, st.cmd.Stderr = &st.out, &st.errOut
	var err error
	if st.stdin, err = st.cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	if err := st.cmd.Start(); err != nil {
		cancel()
		t.Fatal(err)
	}
	go func() {
		st.err = st.cmd.Wait()
		close(st.done)
	}()
	t.Cleanup(func() {
		cancel()
		<-st.done
	})
	if stdin != "" {
		if _, err := io.WriteString(st.stdin, stdin); err != nil {
			t.Fatalf("%s %v: writing stdin: %v", bin, args, err)
		}
	}
	return st
}

// waitIdle returns once the tool has printed something and then nothing
// for streamIdle, or has exited; it gives up after streamMaxWait (the
// comparison then shows what was printed).
func (st *stream) waitIdle(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(streamMaxWait)
	last, since := -1, time.Now()
	for time.Now().Before(deadline) {
		select {
		case <-st.done:
			return
		case <-time.After(50 * time.Millisecond):
		}
		n := st.out.Len() + st.errOut.Len()
		if n != last {
			last, since = n, time.Now()
			continue
		}
		if st.out.Len() > 0 && time.Since(since) >= streamIdle {
			return
		}
	}
	t.Logf("%v: output not idle after %v", st.cmd.Args, streamMaxWait)
}

// stop interrupts the tool as Ctrl-C would and returns what it did.
func (st *stream) stop(t *testing.T) result {
	t.Helper()
	_ = st.cmd.Process.Signal(os.Interrupt)
	select {
	case <-st.done:
	case <-time.After(streamStopWait):
		st.cancel()
		<-st.done
		t.Errorf("%v did not exit within %v of SIGINT", st.cmd.Args, streamStopWait)
	}
	st.stdin.Close()
	code := 0
	var ee *exec.ExitError
	switch {
	case errors.As(st.err, &ee):
		code = ee.ExitCode() // -1: ended by the signal
	case st.err != nil:
		t.Fatalf("%v: %v", st.cmd.Args, st.err)
	}
	return result{stdout: st.out.String(), stderr: st.errOut.String(), code: code}
}

// syncBuffer is a bytes.Buffer the test reads while the process writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) Len() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Len()
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}
