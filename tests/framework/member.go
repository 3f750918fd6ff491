package framework

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Timeouts used by Member. They bound every wait in the harness.
const (
	DefaultHealthTimeout = 20 * time.Second
	StopTimeout          = 15 * time.Second
	killTimeout          = 10 * time.Second
	healthPoll           = 100 * time.Millisecond
)

// Member is one server process of a Cluster. Its flags and data dir are
// fixed at creation, so Restart runs the same command on the same data.
type Member struct {
	Name      string
	Index     int
	bin       string
	args      []string
	env       []string
	clientURL string
	peerURL   string
	dataDir   string
	logPath   string
	workDir   string      // working directory of the process; "" = the test's
	tls       *tls.Config // client TLS for health checks; nil = plain

	mu     sync.Mutex
	cmd    *exec.Cmd
	done   chan struct{} // closed when the current process has exited
	state  *os.ProcessState
	starts int
}

// Endpoint is the member's client URL (http://127.0.0.1:port).
func (m *Member) Endpoint() string { return m.clientURL }

// PeerURL is the member's peer URL.
func (m *Member) PeerURL() string { return m.peerURL }

// DataDir is the member's --data-dir.
func (m *Member) DataDir() string { return m.dataDir }

// LogPath is the file holding the member's stdout and stderr, all runs.
func (m *Member) LogPath() string { return m.logPath }

// Args returns a copy of the member's command-line flags.
func (m *Member) Args() []string { return append([]string(nil), m.args...) }

// Start launches the process without waiting for it to become healthy.
func (m *Member) Start(t testing.TB) {
	t.Helper()
	if err := m.start(); err != nil {
		t.Fatal(err)
	}
}

func (m *Member) start() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.cmd != nil && m.state == nil {
		return fmt.Errorf("member %s: start while still running", m.Name)
	}
	f, err := os.OpenFile(m.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	m.starts++
	fmt.Fprintf(f, "==== framework: start #%d of %s: %s %s\n", m.starts, m.Name, m.bin, strings.Join(m.args, " "))
	cmd := exec.Command(m.bin, m.args...)
	cmd.Env = append(childEnv(), m.env...)
	cmd.Dir = m.workDir
	cmd.Stdout, cmd.Stderr = f, f
	setDeathSignal(cmd)
	if err := cmd.Start(); err != nil {
		_ = f.Close()
		return fmt.Errorf("member %s: starting %s: %w", m.Name, m.bin, err)
	}
	done := make(chan struct{})
	m.cmd, m.done, m.state = cmd, done, nil
	go func() {
		_ = cmd.Wait()
		_ = f.Close()
		m.mu.Lock()
		m.state = cmd.ProcessState
		m.mu.Unlock()
		close(done)
	}()
	return nil
}

// Running reports whether the member's process is alive.
func (m *Member) Running() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.cmd != nil && m.state == nil
}

// Wait waits at most timeout for the process to exit and returns its exit
// code (-1 if killed by a signal); exited is false on timeout.
func (m *Member) Wait(timeout time.Duration) (code int, exited bool) {
	m.mu.Lock()
	done := m.done
	m.mu.Unlock()
	if done == nil {
		return 0, false
	}
	select {
	case <-done:
		return m.ExitCode(), true
	case <-time.After(timeout):
		return 0, false
	}
}

// ExitCode is the last run's exit code: -1 if it was killed by a signal or
// is still running.
func (m *Member) ExitCode() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.state == nil {
		return -1
	}
	return m.state.ExitCode()
}

// ExitSignal is the signal that ended the last run, if one did.
func (m *Member) ExitSignal() (syscall.Signal, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.state == nil {
		return 0, false
	}
	ws, ok := m.state.Sys().(syscall.WaitStatus)
	if !ok || !ws.Signaled() {
		return 0, false
	}
	return ws.Signal(), true
}

func (m *Member) signal(sig syscall.Signal) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.cmd == nil || m.state != nil {
		return nil // not running: nothing to signal
	}
	err := m.cmd.Process.Signal(sig)
	if errors.Is(err, os.ErrProcessDone) {
		return nil
	}
	return err
}

// Pause freezes the process (SIGSTOP): it holds its sockets but answers
// nothing, like a machine that stalls. Resume undoes it.
func (m *Member) Pause(t testing.TB) {
	t.Helper()
	if err := m.signal(syscall.SIGSTOP); err != nil {
		t.Fatalf("member %s: SIGSTOP: %v", m.Name, err)
	}
}

// Resume continues a paused process (SIGCONT).
func (m *Member) Resume(t testing.TB) {
	t.Helper()
	if err := m.signal(syscall.SIGCONT); err != nil {
		t.Fatalf("member %s: SIGCONT: %v", m.Name, err)
	}
}

// Kill sends SIGKILL and waits for the process to be gone.
func (m *Member) Kill(t testing.TB) {
	t.Helper()
	if err := m.kill(); err != nil {
		t.Fatal(err)
	}
}

func (m *Member) kill() error {
	if err := m.signal(syscall.SIGKILL); err != nil {
		return fmt.Errorf("member %s: SIGKILL: %w", m.Name, err)
	}
	if _, ok := m.Wait(killTimeout); !ok && m.Running() {
		return fmt.Errorf("member %s: still running %v after SIGKILL", m.Name, killTimeout)
	}
	return nil
}

// Stop sends SIGTERM and waits at most StopTimeout for the process to exit.
// It returns the exit code (-1 if ended by a signal). A process that does not
// exit in time is killed and the test fails.
func (m *Member) Stop(t testing.TB) int {
	t.Helper()
	if err := m.signal(syscall.SIGTERM); err != nil {
		t.Fatalf("member %s: SIGTERM: %v", m.Name, err)
	}
	code, ok := m.Wait(StopTimeout)
	if !ok {
		_ = m.kill()
		t.Fatalf("member %s did not exit within %v of SIGTERM", m.Name, StopTimeout)
	}
	return code
}

// Restart starts the member again with the same flags and data dir and
// waits until it reports healthy.
func (m *Member) Restart(t testing.TB) {
	t.Helper()
	m.Start(t)
	m.WaitHealthy(t, DefaultHealthTimeout)
}

// WaitHealthy polls GET <client URL>/health until it answers 200, the
// process exits, or timeout passes; the last two fail the test.
func (m *Member) WaitHealthy(t testing.TB, timeout time.Duration) {
	t.Helper()
	if err := m.waitHealthy(timeout); err != nil {
		t.Fatalf("%v\n%s", err, m.LogTail(30))
	}
}

func (m *Member) httpClient() *http.Client {
	if m.tls == nil {
		return &http.Client{Timeout: time.Second}
	}
	return &http.Client{Timeout: time.Second, Transport: &http.Transport{TLSClientConfig: m.tls, DisableKeepAlives: true}}
}

func (m *Member) waitHealthy(timeout time.Duration) error {
	client := m.httpClient()
	deadline := time.Now().Add(timeout)
	last := "no answer"
	for time.Now().Before(deadline) {
		if !m.Running() {
			return fmt.Errorf("member %s exited (code %d) before becoming healthy", m.Name, m.ExitCode())
		}
		ok, status := healthy(client, m.clientURL)
		if ok {
			return nil
		}
		last = status
		time.Sleep(healthPoll)
	}
	return fmt.Errorf("member %s not healthy at %s/health within %v (last: %s)", m.Name, m.clientURL, timeout, last)
}

// Healthy reports whether GET <client URL>/health answers 200 right now.
func (m *Member) Healthy() bool {
	ok, _ := healthy(m.httpClient(), m.clientURL)
	return ok
}

func healthy(client *http.Client, base string) (bool, string) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/health", nil)
	if err != nil {
		return false, err.Error()
	}
	resp, err := client.Do(req)
	if err != nil {
		return false, err.Error()
	}
	defer resp.Body.Close()
	var body bytes.Buffer
	_, _ = body.ReadFrom(io.LimitReader(resp.Body, 4096))
	return resp.StatusCode == http.StatusOK, fmt.Sprintf("%d %s", resp.StatusCode, strings.TrimSpace(body.String()))
}

// Log returns everything the member has written so far, all runs.
func (m *Member) Log() string {
	b, err := os.ReadFile(m.logPath)
	if err != nil {
		return ""
	}
	return string(b)
}

// LogContains reports whether the member's output contains substr.
func (m *Member) LogContains(substr string) bool {
	return strings.Contains(m.Log(), substr)
}

// LogTail returns the last n lines of the member's output, headed by its name.
func (m *Member) LogTail(n int) string {
	lines := strings.Split(strings.TrimRight(m.Log(), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return fmt.Sprintf("---- last %d lines of %s (%s) ----\n%s", len(lines), m.Name, m.logPath, strings.Join(lines, "\n"))
}

// ServerSpec describes a single server process started by StartServer.
type ServerSpec struct {
	Name string // for logs; default "server"
	// Args are the complete flags; nil runs the server with none.
	Args []string
	Env  []string
	// Dir is the working directory (where default data dirs land).
	Dir string
	// ClientURL is where /health is polled, e.g. http://127.0.0.1:2379.
	ClientURL string
	// DataDir is reported by Member.DataDir; informational only.
	DataDir string
	// TLS is the client TLS for health checks of an https ClientURL.
	TLS *tls.Config
}

// StartServer starts one server process outside any Cluster, e.g. with
// default flags, and returns it without waiting for health. It is killed
// when the test ends; its log tail is printed if the test failed.
func StartServer(t testing.TB, spec ServerSpec) *Member {
	t.Helper()
	if spec.Name == "" {
		spec.Name = "server"
	}
	m := &Member{
		Name:      spec.Name,
		bin:       Server(t),
		args:      spec.Args,
		env:       spec.Env,
		clientURL: spec.ClientURL,
		dataDir:   spec.DataDir,
		logPath:   filepath.Join(t.TempDir(), spec.Name+".log"),
		workDir:   spec.Dir,
		tls:       spec.TLS,
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Log(m.LogTail(40))
		}
		_ = m.kill()
	})
	m.Start(t)
	return m
}
