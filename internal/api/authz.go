package api

import (
	"context"
	"strings"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"

	"github.com/cadrekv/cadre/internal/auth"
)

// Access control, in one place for every service: when auth is enabled,
// each request is attributed to a user (the "token" metadata client/v3 and
// etcdctl send, or the "authorization" the HTTP gateway passes on, else
// the verified client certificate's CommonName) and checked before its
// handler runs. Key requests need read or write on the whole of every
// range they touch (all branches of a txn, nested ones too; the full
// extent of prefix and from-key watches); administrative requests need
// root, or for membership changes a Cadre membership grant.

// MembershipGrantKey is the key whose exact permission (write) lets a role
// perform a membership action without root: a Cadre extension etcd
// clients never meet (a wide range permission does not include it).
func MembershipGrantKey(action string) string { return "\x00cadre/membership/" + action }

// requestUser finds who is calling: "" with no error means anonymous.
func requestUser(ctx context.Context, m Member) (string, error) {
	if md, ok := metadata.FromIncomingContext(ctx); ok {
		// etcd reads "token" (client/v3), else "authorization" (the HTTP
		// gateway's Authorization header, "Bearer " optional).
		ts := md.Get(rpctypes.TokenFieldNameGRPC)
		if len(ts) == 0 {
			ts = md.Get(rpctypes.TokenFieldNameSwagger)
		}
		if len(ts) > 0 && ts[0] != "" {
			return m.ResolveToken(strings.TrimPrefix(ts[0], "Bearer "))
		}
	}
	if cn := certCommonName(ctx); cn != "" && m.AuthStore().UserExists(cn) {
		return cn, nil
	}
	return "", nil
}

// certCommonName is the CommonName of a verified client certificate.
func certCommonName(ctx context.Context) string {
	p, ok := peer.FromContext(ctx)
	if !ok {
		return ""
	}
	ti, ok := p.AuthInfo.(credentials.TLSInfo)
	if !ok || len(ti.State.VerifiedChains) == 0 || len(ti.State.VerifiedChains[0]) == 0 {
		return ""
	}
	return ti.State.VerifiedChains[0][0].Subject.CommonName
}

// noAuthNeeded are the calls anyone may make with auth on.
var noAuthNeeded = map[string]bool{
	"/etcdserverpb.Auth/Authenticate": true,
	"/etcdserverpb.Auth/AuthStatus":   true,
	"/etcdserverpb.Auth/AuthEnable":   true, // a no-op when already enabled
	"/grpc.health.v1.Health/Check":    true,
	"/grpc.health.v1.Health/Watch":    true,
}

// authorize checks one unary request for user.
func authorize(m Member, user string, req any) error {
	st := m.AuthStore()
	read := func(rs ...auth.Range) error {
		if !st.Allowed(user, auth.Read, rs...) {
			return rpctypes.ErrGRPCPermissionDenied
		}
		return nil
	}
	write := func(rs ...auth.Range) error {
		if !st.Allowed(user, auth.Write, rs...) {
			return rpctypes.ErrGRPCPermissionDenied
		}
		return nil
	}
	admin := func() error {
		if !st.IsRoot(user) {
			return rpctypes.ErrGRPCPermissionDenied
		}
		return nil
	}
	membership := func(action string) error {
		if st.IsRoot(user) || st.HasExactGrant(user, MembershipGrantKey(action)) {
			return nil
		}
		return rpctypes.ErrGRPCPermissionDenied
	}
	switch r := req.(type) {
	case *pb.RangeRequest:
		return read(auth.Range{Key: r.Key, End: r.RangeEnd})
	case *pb.PutRequest:
		if r.PrevKv {
			if err := read(auth.Range{Key: r.Key}); err != nil {
				return err
			}
		}
		return write(auth.Range{Key: r.Key})
	case *pb.DeleteRangeRequest:
		if r.PrevKv {
			if err := read(auth.Range{Key: r.Key, End: r.RangeEnd}); err != nil {
				return err
			}
		}
		return write(auth.Range{Key: r.Key, End: r.RangeEnd})
	case *pb.TxnRequest:
		reads, writes := txnRanges(r, nil, nil)
		if err := read(reads...); err != nil {
			return err
		}
		return write(writes...)
	case *pb.LeaseRevokeRequest:
		keys, err := m.LeaseKeys(r.ID)
		if err != nil {
			return togRPC(err)
		}
		for _, k := range keys {
			if err := write(auth.Range{Key: k}); err != nil {
				return err
			}
		}
		return nil
	case *pb.LeaseTimeToLiveRequest:
		if !r.Keys {
			return nil
		}
		keys, err := m.LeaseKeys(r.ID)
		if err != nil {
			return togRPC(err)
		}
		for _, k := range keys {
			if err := read(auth.Range{Key: k}); err != nil {
				return err
			}
		}
		return nil
	case *pb.LeaseGrantRequest, *pb.LeaseLeasesRequest, *pb.MemberListRequest, *pb.StatusRequest:
		return nil // any authenticated user
	case *pb.AlarmRequest:
		// Listing alarms is a read (etcdctl endpoint health does it as any
		// user, and etcd allows it); raising or clearing stays root's.
		if r.Action == pb.AlarmRequest_GET {
			return nil
		}
		return admin()
	case *pb.MemberAddRequest:
		if r.IsLearner && membership("add-learner") == nil {
			return nil
		}
		return membership("add")
	case *pb.MemberRemoveRequest:
		return membership("remove")
	case *pb.MemberUpdateRequest:
		return membership("update")
	case *pb.MemberPromoteRequest:
		return membership("promote")
	case *pb.MoveLeaderRequest:
		return membership("move-leader")
	}
	// Compact, Alarm, Defragment, Hash, HashKV, Downgrade and every other
	// Auth call: root only.
	return admin()
}

// txnRanges collects what a txn reads (compares, ranges, prev_kv) and
// writes, in every branch, nested txns included: a txn is allowed only if
// whichever branch runs would be.
func txnRanges(t *pb.TxnRequest, reads, writes []auth.Range) ([]auth.Range, []auth.Range) {
	for _, c := range t.Compare {
		reads = append(reads, auth.Range{Key: c.Key, End: c.RangeEnd})
	}
	for _, ops := range [][]*pb.RequestOp{t.Success, t.Failure} {
		for _, op := range ops {
			switch x := op.Request.(type) {
			case *pb.RequestOp_RequestRange:
				reads = append(reads, auth.Range{Key: x.RequestRange.Key, End: x.RequestRange.RangeEnd})
			case *pb.RequestOp_RequestPut:
				writes = append(writes, auth.Range{Key: x.RequestPut.Key})
				if x.RequestPut.PrevKv {
					reads = append(reads, auth.Range{Key: x.RequestPut.Key})
				}
			case *pb.RequestOp_RequestDeleteRange:
				d := x.RequestDeleteRange
				writes = append(writes, auth.Range{Key: d.Key, End: d.RangeEnd})
				if d.PrevKv {
					reads = append(reads, auth.Range{Key: d.Key, End: d.RangeEnd})
				}
			case *pb.RequestOp_RequestTxn:
				reads, writes = txnRanges(x.RequestTxn, reads, writes)
			}
		}
	}
	return reads, writes
}

// authUnary is the unary half of the access control.
func authUnary(m Member, ctx context.Context, method string, req any) error {
	st := m.AuthStore()
	if !st.Enabled() || noAuthNeeded[method] {
		return nil
	}
	user, err := requestUser(ctx, m)
	if err != nil {
		return togRPC(err)
	}
	if user == "" {
		return rpctypes.ErrGRPCUserEmpty
	}
	return authorize(m, user, req)
}

// authStream checks a stream at its start (snapshot: root; keep-alive:
// any user). A watch stream always starts: each watch it creates is
// checked instead (watchAuthStream).
func authStream(m Member, ss grpc.ServerStream, method string) (grpc.ServerStream, error) {
	if method == "/etcdserverpb.Watch/Watch" {
		return withWatchCheck(ss, m), nil
	}
	st := m.AuthStore()
	if !st.Enabled() || strings.HasPrefix(method, "/grpc.health.v1.") {
		return ss, nil
	}
	user, err := requestUser(ss.Context(), m)
	if err != nil {
		return nil, togRPC(err)
	}
	if user == "" {
		return nil, rpctypes.ErrGRPCUserEmpty
	}
	if method == "/etcdserverpb.Maintenance/Snapshot" && !st.IsRoot(user) {
		return nil, rpctypes.ErrGRPCPermissionDenied
	}
	return ss, nil
}

// watchAuthStream carries the watch permission check to the watch
// session (through its context). As in etcd, every watch is checked when
// it is created, against the auth state and token of that moment: one the
// caller may not make (no or a bad token, a range the user cannot read in
// full) is cancelled at once with the gRPC error as its reason, while the
// stream and its other watches go on. A prefix or from-key watch is
// checked on its whole extent.
type watchAuthStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (w *watchAuthStream) Context() context.Context { return w.ctx }

type watchCheckKey struct{}

func withWatchCheck(ss grpc.ServerStream, m Member) grpc.ServerStream {
	ctx := ss.Context()
	check := func(c *pb.WatchCreateRequest) error {
		st := m.AuthStore()
		if !st.Enabled() {
			return nil
		}
		user, err := requestUser(ctx, m)
		if err != nil {
			switch g := togRPC(err); g {
			case rpctypes.ErrGRPCInvalidAuthToken, rpctypes.ErrGRPCAuthOldRevision:
				return g
			}
			return rpctypes.ErrGRPCPermissionDenied
		}
		if user == "" {
			return rpctypes.ErrGRPCUserEmpty
		}
		if !st.Allowed(user, auth.Read, auth.Range{Key: c.Key, End: c.RangeEnd}) {
			return rpctypes.ErrGRPCPermissionDenied
		}
		return nil
	}
	return &watchAuthStream{ServerStream: ss, ctx: context.WithValue(ctx, watchCheckKey{}, check)}
}

// watchCheck is the check the stream carries (nil: none, every watch is
// allowed).
func watchCheck(ctx context.Context) func(*pb.WatchCreateRequest) error {
	f, _ := ctx.Value(watchCheckKey{}).(func(*pb.WatchCreateRequest) error)
	return f
}
