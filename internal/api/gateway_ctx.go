package api

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// gwContext gives a gateway call the incoming gRPC metadata that etcd's
// gateway would have sent to its gRPC server: "authorization" from the
// Authorization header (how curl passes the token from
// /v3/auth/authenticate) and every "Grpc-Metadata-<Key>" header as <key>
// (so "Grpc-Metadata-Token" works too). A "Grpc-Timeout" header (gRPC's
// format: 5S, 200m) bounds the call.
func gwContext(r *http.Request) (context.Context, context.CancelFunc, error) {
	ctx := r.Context()
	md := metadata.MD{}
	for key, vals := range r.Header {
		for _, v := range vals {
			if key == "Authorization" {
				md.Append("authorization", v)
			}
			if k, ok := strings.CutPrefix(key, "Grpc-Metadata-"); ok && k != "" {
				md.Append(k, v)
			}
		}
	}
	ctx = metadata.NewIncomingContext(ctx, md)
	if tm := r.Header.Get("Grpc-Timeout"); tm != "" {
		d, ok := parseGRPCTimeout(tm)
		if !ok {
			return nil, nil, status.Errorf(codes.InvalidArgument, "invalid grpc-timeout: %s", tm)
		}
		c, cancel := context.WithTimeout(ctx, d)
		return c, cancel, nil
	}
	c, cancel := context.WithCancel(ctx)
	return c, cancel, nil
}

// parseGRPCTimeout reads gRPC's timeout format: an integer and one unit
// letter (H, M, S, m, u, n).
func parseGRPCTimeout(s string) (time.Duration, bool) {
	if len(s) < 2 {
		return 0, false
	}
	units := map[byte]time.Duration{'H': time.Hour, 'M': time.Minute, 'S': time.Second, 'm': time.Millisecond, 'u': time.Microsecond, 'n': time.Nanosecond}
	unit, ok := units[s[len(s)-1]]
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseInt(s[:len(s)-1], 10, 64)
	if err != nil {
		return 0, false
	}
	return unit * time.Duration(n), true
}
