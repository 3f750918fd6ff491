package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
)

// snapshot save, as etcdctl's (same file format, messages and exit codes),
// plus a progress bar on stderr while a large snapshot downloads.

// progressMinBytes is the size from which the progress bar is drawn; a
// small snapshot finishes before anyone could read it.
const progressMinBytes = 8 << 20

func (a *app) newSnapshotCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:     "snapshot <subcommand>",
		Short:   "Manages etcd node snapshots",
		GroupID: groupCluster,
	}
	cmd.AddCommand(&cobra.Command{
		Use:   "save <filename>",
		Short: "Stores an etcd node backend snapshot to a given file",
		RunE: func(c *cobra.Command, args []string) error {
			if len(args) != 1 {
				return exitf(exitBadArgs, "snapshot save expects one argument")
			}
			spec, err := a.configSpec(c)
			if err != nil {
				return err
			}
			if len(spec.Endpoints) != 1 {
				return exitf(exitInterrupted, "snapshot must be requested to one selected node, not multiple %v", spec.Endpoints)
			}
			cli, err := newClient(spec)
			if err != nil {
				return err
			}
			defer cli.Close()
			// As etcdctl: no deadline unless --command-timeout was given,
			// since a large snapshot takes as long as it takes.
			ctx, cancel := context.WithCancel(c.Context())
			if c.Flags().Changed("command-timeout") {
				ctx, cancel = a.commandContext(c)
			}
			defer cancel()
			version, err := saveSnapshot(ctx, pb.NewMaintenanceClient(cli.ActiveConnection()), args[0], a.errOut)
			if err != nil {
				return exitWith(exitInterrupted, err)
			}
			fmt.Fprintf(a.out, "Snapshot saved at %s\n", args[0])
			if version != "" {
				fmt.Fprintf(a.out, "Server version %s\n", version)
			}
			return nil
		},
	})
	return cmd
}

// saveSnapshot downloads the snapshot into path+".part", checks the
// trailing sha256 against the bytes received, fsyncs, and renames it to
// path. It returns the server's storage version.
func saveSnapshot(ctx context.Context, mc pb.MaintenanceClient, path string, progressOut io.Writer) (string, error) {
	part := path + ".part"
	f, err := os.OpenFile(part, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return "", fmt.Errorf("could not open %s (%w)", part, err)
	}
	defer os.Remove(part) // a no-op after the rename
	defer f.Close()

	stream, err := mc.Snapshot(ctx, &pb.SnapshotRequest{})
	if err != nil {
		return "", err
	}
	var (
		version  string
		total    int64 = -1 // database bytes, known from the first response
		received int64
		h        = sha256.New()
		trailer  []byte
		bar      *progressBar
	)
	for {
		resp, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return version, err
		}
		if total < 0 {
			total = int64(resp.RemainingBytes) + int64(len(resp.Blob))
			version = resp.Version
			if total >= progressMinBytes {
				bar = newProgressBar(progressOut, total)
			}
		}
		if _, err := f.Write(resp.Blob); err != nil {
			return version, fmt.Errorf("could not write snapshot: %w", err)
		}
		blob := resp.Blob
		if data := min(int64(len(blob)), max(total-received, 0)); data > 0 {
			h.Write(blob[:data])
			received += data
			blob = blob[data:]
		}
		trailer = append(trailer, blob...)
		bar.update(received)
	}
	bar.finish(received)
	switch {
	case total < 0:
		return version, errors.New("the server closed the snapshot stream without sending anything")
	case received != total || len(trailer) != sha256.Size:
		return version, fmt.Errorf("snapshot stream ended early: got %d of %d database bytes and %d of %d checksum bytes; try again", received, total, len(trailer), sha256.Size)
	case !bytes.Equal(trailer, h.Sum(nil)):
		return version, fmt.Errorf("snapshot corrupted in transit: the server's sha256 %x does not match the %x of the bytes received; try again", trailer, h.Sum(nil))
	}
	if err := f.Sync(); err != nil {
		return version, fmt.Errorf("could not fsync snapshot: %w", err)
	}
	if err := f.Close(); err != nil {
		return version, fmt.Errorf("could not close file descriptor: %w", err)
	}
	if err := os.Rename(part, path); err != nil {
		return version, fmt.Errorf("could not rename %s to %s (%w)", part, path, err)
	}
	return version, nil
}

// progressBar redraws one line on w at most every progressEvery. A nil
// bar draws nothing.
type progressBar struct {
	w     io.Writer
	total int64
	start time.Time
	last  time.Time
}

const (
	progressEvery = 200 * time.Millisecond
	progressWidth = 30
)

func newProgressBar(w io.Writer, total int64) *progressBar {
	now := time.Now()
	return &progressBar{w: w, total: total, start: now, last: now}
}

func (p *progressBar) update(done int64) {
	if p == nil || time.Since(p.last) < progressEvery {
		return
	}
	p.last = time.Now()
	fmt.Fprintf(p.w, "\r%s", renderProgress(done, p.total, time.Since(p.start)))
}

func (p *progressBar) finish(done int64) {
	if p == nil {
		return
	}
	fmt.Fprintf(p.w, "\r%s\n", renderProgress(done, p.total, time.Since(p.start)))
}

// renderProgress draws e.g. "[#########.....................]  30% 9.4 MB / 31 MB  12 MB/s".
func renderProgress(done, total int64, elapsed time.Duration) string {
	frac := 1.0
	if total > 0 {
		frac = min(float64(done)/float64(total), 1)
	}
	filled := int(frac * progressWidth)
	rate := ""
	if s := elapsed.Seconds(); s > 0 {
		rate = "  " + humanBytes(uint64(float64(done)/s)) + "/s"
	}
	return fmt.Sprintf("[%s%s] %3d%% %s / %s%s",
		strings.Repeat("#", filled), strings.Repeat(".", progressWidth-filled),
		int(frac*100), humanBytes(uint64(done)), humanBytes(uint64(total)), rate)
}
