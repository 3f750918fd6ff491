// Package logutil builds Cadre's structured loggers: JSON lines on a writer
// with etcd-style keys (level, ts, msg) so existing log tooling keeps working.
package logutil

import (
	"io"
	"log/slog"
	"strings"
	"time"
)

// New returns a JSON logger writing to w at the given level
// ("debug", "info", "warn", "error"; anything else means info).
func New(w io.Writer, level string) *slog.Logger {
	opts := &slog.HandlerOptions{
		Level: ParseLevel(level),
		ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
			if len(groups) > 0 {
				return a
			}
			switch a.Key {
			case slog.TimeKey:
				// etcd and zap call this field "ts"; keep the name so
				// log pipelines built for etcd parse Cadre unchanged.
				a.Key = "ts"
				a.Value = slog.StringValue(a.Value.Time().UTC().Format(time.RFC3339Nano))
			case slog.LevelKey:
				a.Value = slog.StringValue(strings.ToLower(a.Value.String()))
			}
			return a
		},
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}

// ParseLevel maps a level name to a slog level, defaulting to info.
func ParseLevel(s string) slog.Level {
	switch strings.ToLower(s) {
	case "debug":
		return slog.LevelDebug
	case "warn", "warning":
		return slog.LevelWarn
	case "error":
		return slog.LevelError
	}
	return slog.LevelInfo
}

// Discard is a logger that drops everything; for tests and tools.
func Discard() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }
