package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"
)

// playgroundMember is one member of the local playground cluster; the
// names and ports are the article's, so its walk-through works as written.
type playgroundMember struct {
	name, client, peer string
}

var playgroundMembers = []playgroundMember{
	{"infra1", "http://127.0.0.1:12379", "http://127.0.0.1:12380"},
	{"infra2", "http://127.0.0.1:22379", "http://127.0.0.1:22380"},
	{"infra3", "http://127.0.0.1:32379", "http://127.0.0.1:32380"},
}

// playground runs a local three-member cluster of this binary's own
// processes until interrupted, streaming their logs one event per line.
func playground(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("cadre playground", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dir := fs.String("dir", "", "directory for the members' data dirs and logs (default: a new temporary directory)")
	verbose := fs.Bool("v", false, "also show debug-level log events")
	if err := fs.Parse(args); err != nil {
		return exitBadConfig
	}
	if *dir == "" {
		d, err := os.MkdirTemp("", "cadre-playground-")
		if err != nil {
			fmt.Fprintf(stderr, "cadre playground: %v\n", err)
			return exitFailure
		}
		*dir = d
	}
	self, err := os.Executable()
	if err != nil {
		fmt.Fprintf(stderr, "cadre playground: cannot find own binary: %v\n", err)
		return exitFailure
	}
	var initial []string
	var clients []string
	for _, m := range playgroundMembers {
		initial = append(initial, m.name+"="+m.peer)
		clients = append(clients, strings.TrimPrefix(m.client, "http://"))
	}

	out := &lockedWriter{w: stdout}
	var cmds []*exec.Cmd
	var wg sync.WaitGroup
	exited := make(chan string, len(playgroundMembers))
	for _, m := range playgroundMembers {
		cmd := exec.Command(self,
			"--name", m.name,
			"--data-dir", filepath.Join(*dir, m.name+".cadre"),
			"--listen-client-urls", m.client, "--advertise-client-urls", m.client,
			"--listen-peer-urls", m.peer, "--initial-advertise-peer-urls", m.peer,
			"--initial-cluster", strings.Join(initial, ","),
			"--initial-cluster-token", "cadre-playground",
			"--initial-cluster-state", "new",
		)
		// Only the flags above configure the members; stray ETCD_* or
		// CADRE_* variables of the user's shell must not.
		cmd.Env = filteredEnv()
		stopWithParent(cmd)
		pipe, err := cmd.StderrPipe()
		if err != nil {
			fmt.Fprintf(stderr, "cadre playground: %v\n", err)
			return exitFailure
		}
		if err := cmd.Start(); err != nil {
			fmt.Fprintf(stderr, "cadre playground: starting %s: %v\n", m.name, err)
			stopAll(cmds, &wg)
			return exitFailure
		}
		cmds = append(cmds, cmd)
		wg.Add(1)
		go func(name string, r io.Reader, cmd *exec.Cmd) {
			defer wg.Done()
			streamLog(out, name, r, *verbose)
			err := cmd.Wait()
			out.printf("%s %-6s | exited (%v)\n", time.Now().Format("15:04:05.000"), name, exitText(err))
			exited <- name
		}(m.name, pipe, cmd)
	}

	out.printf(`Cadre playground: 3 members running, data and logs in %s

  cadrectl --endpoints=%s member list -w table
  etcdctl  --endpoints=%s put hello world
  ETCDCTL_API=3 etcdctl --endpoints=%s endpoint status -w table

Press Ctrl-C to stop the cluster.

`, *dir, strings.Join(clients, ","), strings.Join(clients, ","), strings.Join(clients, ","))

	sigc := make(chan os.Signal, 1)
	signal.Notify(sigc, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(sigc)
	running := len(cmds)
	for running > 0 {
		select {
		case <-sigc:
			out.printf("stopping the playground cluster...\n")
			stopAll(cmds, &wg)
			out.printf("stopped; data kept in %s\n", *dir)
			return exitOK
		case <-exited:
			running--
		}
	}
	wg.Wait()
	fmt.Fprintln(stderr, "cadre playground: every member exited; see the log above")
	return exitFailure
}

// stopAll asks every member to stop gracefully (a leader hands over
// first), then kills any that has not exited after a bounded wait.
func stopAll(cmds []*exec.Cmd, wg *sync.WaitGroup) {
	for _, c := range cmds {
		_ = c.Process.Signal(syscall.SIGTERM)
	}
	stopped := make(chan struct{})
	go func() {
		wg.Wait()
		close(stopped)
	}()
	select {
	case <-stopped:
	case <-time.After(15 * time.Second):
		for _, c := range cmds {
			_ = c.Process.Kill()
		}
		<-stopped
	}
}

func filteredEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "ETCD_") || strings.HasPrefix(kv, "CADRE_") {
			continue
		}
		env = append(env, kv)
	}
	return env
}

func exitText(err error) string {
	if err == nil {
		return "exit status 0"
	}
	return err.Error()
}

// streamLog turns a member's JSON log into readable lines:
// "15:04:05.000 infra1 | info  msg key=value ...".
func streamLog(out *lockedWriter, name string, r io.Reader, verbose bool) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		line := sc.Bytes()
		var ev map[string]any
		if json.Unmarshal(line, &ev) != nil {
			out.printf("%s %-6s | %s\n", time.Now().Format("15:04:05.000"), name, line)
			continue
		}
		level, _ := ev["level"].(string)
		if level == "debug" && !verbose {
			continue
		}
		msg, _ := ev["msg"].(string)
		var keys []string
		for k := range ev {
			switch k {
			case "level", "msg", "ts", "local-member-id", "cluster-id":
				continue
			}
			keys = append(keys, k)
		}
		sort.Strings(keys)
		var b strings.Builder
		for _, k := range keys {
			fmt.Fprintf(&b, " %s=%v", k, ev[k])
		}
		out.printf("%s %-6s | %-5s %s%s\n", time.Now().Format("15:04:05.000"), name, level, msg, b.String())
	}
}

type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) printf(format string, a ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	fmt.Fprintf(l.w, format, a...)
}
