package main

import (
	"errors"
	"fmt"
)

// Exit codes, identical to etcdctl's (go.etcd.io/etcd/pkg/v3/cobrautl) so
// scripts can tell a bad connection from bad input.
const (
	exitSuccess       = 0
	exitFailure       = 1 // the request failed, or a generic error
	exitBadConnection = 2 // the client could not be created
	exitInvalidInput  = 3 // malformed txn input
	exitBadFeature    = 4 // a valid flag with an unsupported value
	exitInterrupted   = 5 // a stream (watch) ended without being asked to
	exitBadArgs       = 128
)

// exitError carries the exit code a command ends with. execute prints
// "Error: <err>" on stderr unless quiet is set (etcdctl exits silently when
// it has already reported per-endpoint failures).
type exitError struct {
	code  int
	err   error
	quiet bool
	hint  string // printed as "hint: ..." after the error line, which stays etcdctl's
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

// exitWith wraps err so that the command ends with code.
func exitWith(code int, err error) error {
	return &exitError{code: code, err: err}
}

// exitf is exitWith with a formatted message.
func exitf(code int, format string, args ...any) error {
	return &exitError{code: code, err: fmt.Errorf(format, args...)}
}

// quietFailure ends a command with exit code 1 and no message, for when the
// failures were already reported line by line.
func quietFailure() error {
	return &exitError{code: exitFailure, err: errors.New("failure already reported"), quiet: true}
}
