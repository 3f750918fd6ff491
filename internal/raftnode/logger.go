package raftnode

import (
	"fmt"
	"log/slog"
)

// raftLogger adapts slog to raft's logger so raft's own messages land in the
// member's structured log instead of a process-wide logger.
type raftLogger struct{ lg *slog.Logger }

func (l *raftLogger) Debug(v ...interface{}) { l.lg.Debug(fmt.Sprint(v...), "component", "raft") }
func (l *raftLogger) Debugf(f string, v ...interface{}) {
	l.lg.Debug(fmt.Sprintf(f, v...), "component", "raft")
}
func (l *raftLogger) Info(v ...interface{}) { l.lg.Info(fmt.Sprint(v...), "component", "raft") }
func (l *raftLogger) Infof(f string, v ...interface{}) {
	l.lg.Info(fmt.Sprintf(f, v...), "component", "raft")
}
func (l *raftLogger) Warning(v ...interface{}) { l.lg.Warn(fmt.Sprint(v...), "component", "raft") }
func (l *raftLogger) Warningf(f string, v ...interface{}) {
	l.lg.Warn(fmt.Sprintf(f, v...), "component", "raft")
}
func (l *raftLogger) Error(v ...interface{}) { l.lg.Error(fmt.Sprint(v...), "component", "raft") }
func (l *raftLogger) Errorf(f string, v ...interface{}) {
	l.lg.Error(fmt.Sprintf(f, v...), "component", "raft")
}

// Fatal and Panic mean raft found a broken invariant (e.g. a log that
// contradicts its own commit index). Continuing could acknowledge wrong
// data, so both stop the process loudly.
func (l *raftLogger) Fatal(v ...interface{}) { l.Panic(v...) }
func (l *raftLogger) Fatalf(f string, v ...interface{}) {
	l.Panicf(f, v...)
}
func (l *raftLogger) Panic(v ...interface{}) {
	msg := fmt.Sprint(v...)
	l.lg.Error(msg, "component", "raft")
	panic(msg)
}
func (l *raftLogger) Panicf(f string, v ...interface{}) {
	msg := fmt.Sprintf(f, v...)
	l.lg.Error(msg, "component", "raft")
	panic(msg)
}
