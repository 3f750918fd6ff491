package main

import (
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/pflag"

	"github.com/cadrekv/cadre/internal/logutil"
	"github.com/cadrekv/cadre/internal/membership"
	"github.com/cadrekv/cadre/internal/snapshot"
)

const snapshotUsage = `Usage:
  cadre snapshot status FILE [-w simple|table|json]
  cadre snapshot restore FILE --name NAME --initial-cluster NAME=PEER-URL,...
        --initial-cluster-token TOKEN --initial-advertise-peer-urls PEER-URL
        --data-dir DIR [--bump-revision N --mark-compacted] [--skip-hash-check]

FILE is written by 'etcdctl snapshot save' or 'cadrectl snapshot save', from
Cadre or from etcd 3.5+ (restore converts etcd's data; see docs/MIGRATION.md).
Restore builds the data dir of one member of a NEW cluster: run it once per
member with the same --initial-cluster and token, then start every member
with its --data-dir (the --initial-* flags are then ignored).
`

// snapshotCommand runs `cadre snapshot ...` (args exclude "snapshot").
func snapshotCommand(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprint(stdout, snapshotUsage)
		if len(args) == 0 {
			return exitBadConfig
		}
		return exitOK
	}
	switch args[0] {
	case "status":
		return snapshotStatus(args[1:], stdout, stderr)
	case "restore":
		return snapshotRestore(args[1:], stdout, stderr)
	}
	fmt.Fprintf(stderr, "cadre snapshot: unknown command %q; expected status or restore\n\n%s", args[0], snapshotUsage)
	return exitBadConfig
}

func newSnapshotFlags(name string, stderr io.Writer) *pflag.FlagSet {
	fs := pflag.NewFlagSet("cadre snapshot "+name, pflag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, snapshotUsage)
		fmt.Fprintf(stderr, "\nFlags of %s:\n%s", name, fs.FlagUsages())
	}
	return fs
}

// oneFile returns the single positional argument.
func oneFile(fs *pflag.FlagSet, stderr io.Writer) (string, bool) {
	if fs.NArg() != 1 {
		fmt.Fprintf(stderr, "cadre %s: expected exactly one snapshot file, got %d arguments (%s)\n", fs.Name()[len("cadre "):], fs.NArg(), strings.Join(fs.Args(), " "))
		return "", false
	}
	return fs.Arg(0), true
}

func snapshotStatus(args []string, stdout, stderr io.Writer) int {
	fs := newSnapshotFlags("status", stderr)
	format := fs.StringP("write-out", "w", "simple", "output format: simple, table or json")
	if err := fs.Parse(args); err != nil {
		return exitBadConfig
	}
	file, ok := oneFile(fs, stderr)
	if !ok {
		return exitBadConfig
	}
	switch *format {
	case "simple", "table", "json":
	default:
		fmt.Fprintf(stderr, "cadre snapshot status: unknown --write-out %q; expected simple, table or json\n", *format)
		return exitBadConfig
	}
	st, err := snapshot.ReadStatus(file)
	if err != nil {
		fmt.Fprintf(stderr, "cadre snapshot status: %v\n", err)
		return exitFailure
	}
	if err := st.Write(stdout, *format); err != nil {
		fmt.Fprintf(stderr, "cadre snapshot status: %v\n", err)
		return exitFailure
	}
	return exitOK
}

func snapshotRestore(args []string, stdout, stderr io.Writer) int {
	fs := newSnapshotFlags("restore", stderr)
	var cfg snapshot.RestoreConfig
	fs.StringVar(&cfg.Name, "name", "default", "name of this member in --initial-cluster")
	fs.StringVar(&cfg.InitialCluster, "initial-cluster", "", "every member of the new cluster: name=peerURL,... (required)")
	fs.StringVar(&cfg.InitialClusterToken, "initial-cluster-token", "etcd-cluster", "token of the new cluster; choose a new one")
	fs.StringSliceVar(&cfg.AdvertisePeerURLs, "initial-advertise-peer-urls", nil, "this member's peer URLs (checked against --initial-cluster)")
	fs.StringVar(&cfg.DataDir, "data-dir", "", "new, empty data dir for this member (default NAME.etcd)")
	fs.Uint64Var(&cfg.BumpRevision, "bump-revision", 0, "raise the revision by this much (needs --mark-compacted)")
	fs.BoolVar(&cfg.MarkCompacted, "mark-compacted", false, "compact at the restored revision, so older watchers are told their history is gone")
	fs.BoolVar(&cfg.SkipHashCheck, "skip-hash-check", false, "accept a file without the sha256 trailer (a raw copy of member/db)")
	logLevel := fs.String("log-level", "warn", "level of the JSON log on stderr: debug, info, warn, error")
	if err := fs.Parse(args); err != nil {
		return exitBadConfig
	}
	file, ok := oneFile(fs, stderr)
	if !ok {
		return exitBadConfig
	}
	cfg.SnapshotPath = file
	if cfg.DataDir == "" {
		cfg.DataDir = cfg.Name + ".etcd" // etcd's default
	}
	cfg.Logger = logutil.New(stderr, *logLevel)
	res, err := snapshot.Restore(cfg)
	if err != nil {
		fmt.Fprintf(stderr, "cadre snapshot restore: %v\n", err)
		if errors.Is(err, snapshot.ErrInvalidConfig) {
			return exitBadConfig
		}
		return exitFailure
	}
	from := "a Cadre snapshot"
	if res.Layout == snapshot.LayoutEtcd {
		from = "an etcd snapshot (converted)"
	}
	fmt.Fprintf(stdout, "Restored %s from %s into %s: member %s (%s) of new cluster %s, %d members, revision %d, compacted %d\n",
		file, from, cfg.DataDir, cfg.Name, membership.IDString(res.MemberID), membership.IDString(res.ClusterID),
		len(res.Members), res.Revision, res.Compacted)
	return exitOK
}
