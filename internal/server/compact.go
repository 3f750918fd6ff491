package server

import (
	"context"
	"errors"
	"strconv"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"

	"github.com/cadrekv/cadre/internal/storage/mvcc"
)

// Automatic compaction, as etcd's --auto-compaction-mode/-retention. Only
// the leader compacts, through raft, so every member frees the same
// history.
//
//   - periodic: keep the last <retention> of history (an integer is hours,
//     or a Go duration). The leader samples the revision every
//     retention/10 and compacts to the revision it saw <retention> ago.
//   - revision: keep the last <retention> revisions. The leader checks
//     every second and compacts once at least retention/10 (and at least
//     one) revisions have become compactable, so a busy cluster does not
//     compact on every write.

// autoCompaction returns the loop's period and its compaction function, or
// nil when automatic compaction is off.
func (s *Server) autoCompaction() (time.Duration, func(now time.Time, rev, compacted int64) int64) {
	retention := s.cfg.AutoCompactionRetention
	if retention == "" || retention == "0" {
		return 0, nil
	}
	switch s.cfg.AutoCompactionMode {
	case "revision":
		keep, err := strconv.ParseInt(retention, 10, 64)
		if err != nil || keep <= 0 {
			return 0, nil
		}
		step := max(keep/10, 1)
		return time.Second, func(_ time.Time, rev, compacted int64) int64 {
			if target := rev - keep; target-compacted >= step {
				return target
			}
			return 0
		}
	default: // periodic
		d, err := time.ParseDuration(retention)
		if err != nil {
			h, herr := strconv.ParseInt(retention, 10, 64)
			if herr != nil || h <= 0 {
				return 0, nil
			}
			d = time.Duration(h) * time.Hour
		}
		if d <= 0 {
			return 0, nil
		}
		type sample struct {
			at  time.Time
			rev int64
		}
		var samples []sample
		return max(d/10, 100*time.Millisecond), func(now time.Time, rev, compacted int64) int64 {
			samples = append(samples, sample{now, rev})
			var target int64
			// The newest sample at least <retention> old is the target.
			for len(samples) > 0 && now.Sub(samples[0].at) >= d {
				target = samples[0].rev
				samples = samples[1:]
			}
			if target > compacted {
				return target
			}
			return 0
		}
	}
}

// compactLoop runs automatic compaction while this member leads.
func (s *Server) compactLoop() {
	period, next := s.autoCompaction()
	if next == nil {
		return
	}
	s.lg.Info("automatic compaction enabled", "mode", s.cfg.AutoCompactionMode, "retention", s.cfg.AutoCompactionRetention, "check-every", period.String())
	t := time.NewTicker(period)
	defer t.Stop()
	for {
		select {
		case <-s.stopping:
			return
		case now := <-t.C:
			if !s.node.IsLeader() {
				continue
			}
			rev, compacted := s.store.Rev()
			target := next(now, rev, compacted)
			if target <= compacted {
				continue
			}
			ctx, cancel := context.WithTimeout(context.Background(), s.reqTimout)
			_, err := s.Compact(ctx, &pb.CompactionRequest{Revision: target})
			cancel()
			switch {
			case err == nil:
				s.lg.Info("automatic compaction done", "revision", target)
			case errors.Is(err, mvcc.ErrCompacted):
			default:
				s.lg.Warn("automatic compaction failed; will retry", "revision", target, "error", err.Error())
			}
		}
	}
}
