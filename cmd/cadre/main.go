// Command cadre is the Cadre server: an etcd-compatible, Raft-replicated
// key-value member. It takes etcd's flags (and ETCD_*/CADRE_* environment
// variables). This file is wiring only: parse, validate, start, wait.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime"
	"strings"
	"syscall"

	"github.com/cadrekv/cadre/internal/auth"
	"github.com/cadrekv/cadre/internal/config"
	"github.com/cadrekv/cadre/internal/daemon"
	"github.com/cadrekv/cadre/internal/discovery"
	"github.com/cadrekv/cadre/internal/join"
	"github.com/cadrekv/cadre/internal/logutil"
	"github.com/cadrekv/cadre/internal/server"
	"github.com/cadrekv/cadre/internal/tlsutil"
)

// Exit codes (documented in the README).
const (
	exitOK        = 0
	exitFailure   = 1 // the member failed at start or while running
	exitBadConfig = 2 // invalid flags or environment: nothing was created
	exitRemoved   = 3 // the member was removed from its cluster: do not restart it
	exitStaleData = 4 // the cluster knows this member with another data dir: do not restart it
)

func main() {
	os.Exit(run(os.Args[1:], os.Environ(), os.Stdout, os.Stderr))
}

func run(args, environ []string, stdout, stderr io.Writer) int {
	if len(args) > 0 && args[0] == "snapshot" {
		return snapshotCommand(args[1:], stdout, stderr)
	}
	if len(args) > 0 && args[0] == "playground" {
		return playground(args[1:], stdout, stderr)
	}

	// 1. Configuration: flags beat CADRE_*, which beat ETCD_*. Everything
	// is validated before anything touches the disk.
	cfg, warnings, err := config.Parse(args, environ)
	switch {
	case errors.Is(err, config.ErrHelp):
		fmt.Fprint(stdout, config.Usage())
		return exitOK
	case errors.Is(err, config.ErrVersion):
		// etcd's lines (tools such as etcd's test framework read "etcd
		// Version:" to learn which etcd they drive), then Cadre's own.
		fmt.Fprintf(stdout, "etcd Version: %s\nGit SHA: cadre-%s\nGo Version: %s\nGo OS/Arch: %s/%s\ncadre Version: %s\n",
			server.Version, server.CadreVersion, runtime.Version(), runtime.GOOS, runtime.GOARCH, server.CadreVersion)
		return exitOK
	case err != nil:
		fmt.Fprintf(stderr, "cadre: %v\n", err)
		return exitBadConfig
	}
	validate := cfg.Validate
	if server.HasData(cfg.DataDir) {
		validate = cfg.ValidateWithData
	}
	if err := validate(); err != nil {
		fmt.Fprintf(stderr, "cadre: %v\n", err)
		return exitBadConfig
	}

	// 2. Logging: JSON lines on stderr.
	lg := logutil.New(stderr, cfg.LogLevel)
	for _, w := range warnings {
		lg.Warn(w)
	}

	// 3. Discovery (a new member only): find the other initial members
	// before anything is written, so a refusal leaves no data dir.
	if cfg.Discovery.Enabled() && !server.HasData(cfg.DataDir) {
		if err := discover(cfg, lg); err != nil {
			lg.Error("discovery failed", "name", cfg.Name, "error", err.Error())
			fmt.Fprintf(stderr, "cadre: %v\n", err)
			return exitFailure
		}
	}

	// 4. TLS: certificate files are read (and auto-TLS ones made) before
	// the member starts, so a bad file is a configuration error.
	tb, err := tlsutil.Build(cfg)
	if err != nil {
		fmt.Fprintf(stderr, "cadre: invalid TLS configuration: %v\n", err)
		return exitBadConfig
	}
	if opts, ok := strings.CutPrefix(cfg.Auth.Token, "jwt,"); ok {
		if _, err := auth.ParseJWTOptions(opts); err != nil {
			fmt.Fprintf(stderr, "cadre: invalid --auth-token: %v\n", err)
			return exitBadConfig
		}
	}

	// 4b. --join: pre-flight and add, before the member touches raft.
	if cfg.Join.Enabled() {
		jt, err := join.ClientTLS(cfg)
		if err != nil {
			fmt.Fprintf(stderr, "cadre: invalid TLS configuration for --join: %v\n", err)
			return exitBadConfig
		}
		err = join.Prepare(context.Background(), cfg, lg, join.TLS{PeerServer: tb.PeerServer, Client: jt, HandshakeTimeout: tb.HandshakeTimeout}, server.HasData(cfg.DataDir))
		if err != nil {
			lg.Error("could not join the cluster", "name", cfg.Name, "join", cfg.Join.URLs, "error", err.Error())
			fmt.Fprintf(stderr, "cadre: %v\n", err)
			return exitFailure
		}
	}

	// 5. Start the member (storage, raft, peers, then clients).
	m, err := daemon.Start(cfg, lg, tb)
	if err != nil {
		lg.Error("failed to start member", "name", cfg.Name, "data-dir", cfg.DataDir, "error", err.Error())
		// The same text as one plain line, for an operator reading a
		// terminal rather than a log pipeline.
		fmt.Fprintf(stderr, "cadre: %v\n", err)
		if errors.Is(err, server.ErrRemoved) {
			return exitRemoved
		}
		if errors.Is(err, server.ErrStaleDataDir) {
			return exitStaleData
		}
		return exitFailure
	}

	// 6. Run until a signal asks us to stop or the member stops itself.
	sigc := make(chan os.Signal, 1)
	signal.Notify(sigc, syscall.SIGTERM, syscall.SIGINT)
	defer signal.Stop(sigc)
	select {
	case sig := <-sigc:
		lg.Info("received signal; stopping gracefully", "signal", sig.String())
		m.Stop()
	case <-m.Done():
	}
	if err := m.Err(); err != nil {
		lg.Error("member stopped", "error", err.Error())
		if errors.Is(err, server.ErrRemoved) {
			return exitRemoved
		}
		if errors.Is(err, server.ErrStaleDataDir) {
			return exitStaleData
		}
		return exitFailure
	}
	return exitOK
}

// discover replaces the initial cluster with the one discovery finds and
// validates the result like a given --initial-cluster. SIGINT/SIGTERM end
// the wait for the other members.
func discover(cfg *config.Config, lg *slog.Logger) error {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	var text string
	if cfg.Discovery.Token != "" {
		t, err := discovery.Registry(ctx, cfg, lg)
		if err != nil {
			return err
		}
		text = t
	} else {
		t, self, err := discovery.SRV(ctx, cfg, lg)
		if err != nil {
			return err
		}
		if err := cfg.SetAdvertisePeerURLs(self); err != nil {
			return err
		}
		text = t
	}
	if err := cfg.SetInitialCluster(text); err != nil {
		return fmt.Errorf("discovery produced an unusable initial cluster %q: %w", text, err)
	}
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("discovery produced initial cluster %q: %w", text, err)
	}
	return nil
}
