package api

import (
	"context"
	"errors"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/cadrekv/cadre/internal/auth"
	"github.com/cadrekv/cadre/internal/cerr"
	"github.com/cadrekv/cadre/internal/lease"
	"github.com/cadrekv/cadre/internal/membership"
	"github.com/cadrekv/cadre/internal/storage/mvcc"
)

// errorTable is the one place where internal errors become the errors etcd
// clients know (and react to: client/v3 retries on some of them).
var errorTable = []struct {
	err  error
	grpc error
}{
	{mvcc.ErrCompacted, rpctypes.ErrGRPCCompacted},
	{mvcc.ErrFutureRev, rpctypes.ErrGRPCFutureRev},
	{mvcc.ErrKeyNotFound, rpctypes.ErrGRPCKeyNotFound},
	{cerr.ErrNoLeader, rpctypes.ErrGRPCNoLeader},
	{cerr.ErrNotLeader, rpctypes.ErrGRPCNotLeader},
	{cerr.ErrTimeout, rpctypes.ErrGRPCTimeout},
	{cerr.ErrTimeoutLeader, rpctypes.ErrGRPCTimeoutDueToLeaderFail},
	{cerr.ErrStopped, rpctypes.ErrGRPCStopped},
	{cerr.ErrRequestTooLarge, rpctypes.ErrGRPCRequestTooLarge},
	{cerr.ErrLeaseNotFound, rpctypes.ErrGRPCLeaseNotFound},
	{cerr.ErrNotReady, rpctypes.ErrGRPCNotCapable},
	{cerr.ErrNotSupportedLrnr, rpctypes.ErrGRPCNotSupportedForLearner},
	{cerr.ErrBadTransferee, rpctypes.ErrGRPCBadLeaderTransferee},
	{cerr.ErrNoSpace, rpctypes.ErrGRPCNoSpace},
	{cerr.ErrCorrupt, rpctypes.ErrGRPCCorrupt},
	{cerr.ErrLeaderTransferTimeout, errGRPCTimeoutLeaderTransfer},
	{membership.ErrNotEnoughStarted, rpctypes.ErrGRPCMemberNotEnoughStarted},
	{membership.ErrUnhealthy, rpctypes.ErrGRPCUnhealthy},
	{membership.ErrLearnerNotReady, rpctypes.ErrGRPCLearnerNotReady},
	{membership.ErrNotLearner, rpctypes.ErrGRPCMemberNotLearner},
	{membership.ErrTooManyLearners, rpctypes.ErrGRPCTooManyLearners},
	{membership.ErrBadURLs, rpctypes.ErrGRPCMemberBadURLs},
	{membership.ErrPeerURLExists, rpctypes.ErrGRPCPeerURLExist},
	{membership.ErrIDExists, rpctypes.ErrGRPCMemberExist},
	{membership.ErrIDNotFound, rpctypes.ErrGRPCMemberNotFound},
	{membership.ErrIDRemoved, rpctypes.ErrGRPCMemberNotFound},
	{lease.ErrLeaseNotFound, rpctypes.ErrGRPCLeaseNotFound},
	{lease.ErrLeaseExists, rpctypes.ErrGRPCLeaseExist},
	{lease.ErrLeaseTTLTooLarge, rpctypes.ErrGRPCLeaseTTLTooLarge},
	{lease.ErrNotPrimary, rpctypes.ErrGRPCNotLeader},

	{auth.ErrRootUserNotExist, rpctypes.ErrGRPCRootUserNotExist},
	{auth.ErrRootRoleNotExist, rpctypes.ErrGRPCRootRoleNotExist},
	{auth.ErrUserAlreadyExist, rpctypes.ErrGRPCUserAlreadyExist},
	{auth.ErrUserEmpty, rpctypes.ErrGRPCUserEmpty},
	{auth.ErrUserNotFound, rpctypes.ErrGRPCUserNotFound},
	{auth.ErrRoleAlreadyExist, rpctypes.ErrGRPCRoleAlreadyExist},
	{auth.ErrRoleNotFound, rpctypes.ErrGRPCRoleNotFound},
	{auth.ErrRoleEmpty, rpctypes.ErrGRPCRoleEmpty},
	{auth.ErrPermissionNotGiven, rpctypes.ErrGRPCPermissionNotGiven},
	{auth.ErrPermissionDenied, rpctypes.ErrGRPCPermissionDenied},
	{auth.ErrRoleNotGranted, rpctypes.ErrGRPCRoleNotGranted},
	{auth.ErrPermissionNotGranted, rpctypes.ErrGRPCPermissionNotGranted},
	{auth.ErrAuthFailed, rpctypes.ErrGRPCAuthFailed},
	{auth.ErrAuthNotEnabled, rpctypes.ErrGRPCAuthNotEnabled},
	{auth.ErrInvalidAuthToken, rpctypes.ErrGRPCInvalidAuthToken},
	{auth.ErrInvalidAuthMgmt, rpctypes.ErrGRPCInvalidAuthMgmt},
	{auth.ErrAuthOldRevision, rpctypes.ErrGRPCAuthOldRevision},
	{auth.ErrNoPasswordUser, rpctypes.ErrGRPCAuthFailed},
}

func isLeaseNotFound(err error) bool { return errors.Is(err, lease.ErrLeaseNotFound) }

// errGRPCTimeoutLeaderTransfer is etcd's text for a leader transfer that
// did not finish; rpctypes has no value for it.
var errGRPCTimeoutLeaderTransfer = status.Error(codes.DeadlineExceeded, "etcdserver: request timed out, leader transfer took too long")

// togRPC translates err for the wire.
func togRPC(err error) error {
	if err == nil {
		return nil
	}
	if _, ok := status.FromError(err); ok {
		return err
	}
	for _, e := range errorTable {
		if errors.Is(err, e.err) {
			return e.grpc
		}
	}
	switch {
	case errors.Is(err, context.Canceled):
		return status.Error(codes.Canceled, err.Error())
	case errors.Is(err, context.DeadlineExceeded):
		return status.Error(codes.DeadlineExceeded, err.Error())
	}
	return status.Error(codes.Unknown, err.Error())
}
