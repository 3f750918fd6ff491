package api

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

// The etcd v3 API over HTTP/JSON at etcd's gateway paths (/v3/kv/range,
// /v3/watch, ...), for tools that use curl instead of gRPC. Requests and
// responses are the gRPC messages in the JSON encoding of etcd's gateway
// (gateway_codec.go). Each call goes through the interceptors of the gRPC
// server (readiness, learner and auth checks) and then the same service
// code, so both APIs answer alike.

// GRPCOverhead is the room above --max-request-bytes a request message
// may take (etcd's value): the gRPC server's limit is the sum, and the
// gateway's the same.
const GRPCOverhead = 512 * 1024

type gateway struct {
	routes   map[string]gwRoute
	unaryIC  grpc.UnaryServerInterceptor
	streamIC grpc.StreamServerInterceptor
	maxRecv  int // the largest request message, in protobuf bytes
}

func newGateway(m Member, lim Limits, maxRequestBytes uint) *gateway {
	mrb := maxRequestBytes
	if mrb == 0 {
		mrb = defaultMaxWatchResponseBytes // etcd's default --max-request-bytes
	}
	return &gateway{
		routes:   gwRoutes(m, lim, maxRequestBytes),
		unaryIC:  UnaryInterceptor(m),
		streamIC: StreamInterceptor(m),
		maxRecv:  int(mrb) + GRPCOverhead,
	}
}

// ServeHTTP routes as grpc-gateway does: an unknown path is 404 and a
// known path with another method than POST is 501, both with a JSON
// status body. /v3beta/ is the old name of /v3/, still accepted by etcd.
func (g *gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if isWebSocketUpgrade(r) {
		g.serveWebSocket(w, r) // gateway_ws.go
		return
	}
	path := r.URL.Path
	if rest, ok := strings.CutPrefix(path, "/v3beta/"); ok {
		path = "/v3/" + rest
	}
	rt, ok := g.routes[path]
	if !ok {
		gwWriteError(w, status.Error(codes.NotFound, http.StatusText(http.StatusNotFound)))
		return
	}
	if r.Method != http.MethodPost {
		gwWriteError(w, status.Error(codes.Unimplemented, http.StatusText(http.StatusMethodNotAllowed)))
		return
	}
	ctx, cancel, err := gwContext(r)
	if err != nil {
		gwWriteError(w, err)
		return
	}
	defer cancel()
	r = r.WithContext(ctx)
	if rt.unary != nil {
		g.serveUnary(w, r, rt)
		return
	}
	g.serveStream(w, r, rt)
}

// decodeBody reads the request message of a unary or server-streaming
// call: an empty body is an empty request, as in etcd.
func (g *gateway) decodeBody(r *http.Request, m proto.Message) error {
	body := &limitedBody{r: r.Body, n: gwBodyLimit(g.maxRecv)}
	body.reset()
	err := gwDecode(json.NewDecoder(body), m)
	switch {
	case body.exceeded:
		return errGWBodyTooLarge(g.maxRecv)
	case errors.Is(err, io.EOF):
		// nothing sent: the zero request
	case err != nil:
		return status.Errorf(codes.InvalidArgument, "%v", err)
	}
	return gwCheckSize(m, g.maxRecv)
}

func (g *gateway) serveUnary(w http.ResponseWriter, r *http.Request, rt gwRoute) {
	req := rt.newReq()
	if err := g.decodeBody(r, req); err != nil {
		gwWriteError(w, err)
		return
	}
	info := &grpc.UnaryServerInfo{FullMethod: rt.method}
	resp, err := g.unaryIC(r.Context(), req, info, func(ctx context.Context, req any) (any, error) {
		return rt.unary(ctx, req.(proto.Message))
	})
	if err != nil {
		gwWriteError(w, err)
		return
	}
	gwWriteMessage(w, resp.(proto.Message))
}

func (g *gateway) serveStream(w http.ResponseWriter, r *http.Request, rt gwRoute) {
	var req proto.Message
	if rt.newReq != nil {
		req = rt.newReq()
		if err := g.decodeBody(r, req); err != nil {
			gwWriteError(w, err)
			return
		}
	}
	ss := newHTTPServerStream(r.Context(), w, r, g.maxRecv)
	info := &grpc.StreamServerInfo{FullMethod: rt.method, IsClientStream: req == nil, IsServerStream: true}
	err := g.streamIC(nil, ss, info, func(_ any, stream grpc.ServerStream) error {
		return rt.stream(req, stream)
	})
	ss.finish(err)
}
