// Package cerr holds the server-level errors shared by the server (which
// returns them) and the API layer (which translates them, once, into the
// etcd errors clients know).
package cerr

import "errors"

var (
	ErrTimeout               = errors.New("request timed out")
	ErrTimeoutLeader         = errors.New("request timed out, possibly due to previous leader failure")
	ErrStopped               = errors.New("server stopped")
	ErrNoLeader              = errors.New("no leader")
	ErrNotLeader             = errors.New("not leader")
	ErrRequestTooLarge       = errors.New("request is too large")
	ErrLeaseNotFound         = errors.New("requested lease not found")
	ErrNotReady              = errors.New("server not ready")
	ErrNotSupportedLrnr      = errors.New("rpc not supported for learner")
	ErrNoSpace               = errors.New("mvcc: database space exceeded")
	ErrCorrupt               = errors.New("corrupt cluster")
	ErrBadTransferee         = errors.New("bad leader transferee")
	ErrLeaderTransferTimeout = errors.New("request timed out, leader transfer took too long")
	// ErrInvalidArgument wraps a Cadre-specific request refused for its
	// content (the message says what was expected).
	ErrInvalidArgument = errors.New("invalid argument")
)
