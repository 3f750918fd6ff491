package api

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"

	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

// httpServerStream is a gRPC server stream over one HTTP exchange, so the
// gateway runs the streaming services (watch, lease keep-alive, snapshot)
// and their interceptor unchanged. Requests are the JSON values of the
// request body, one after another; responses are written as
// newline-delimited {"result":...} lines, each flushed at once.
type httpServerStream struct {
	ctx     context.Context
	w       http.ResponseWriter
	rc      *http.ResponseController
	dec     *json.Decoder
	body    *limitedBody
	maxRecv int
	wrote   bool // a response line went out: the HTTP status is sent
}

func newHTTPServerStream(ctx context.Context, w http.ResponseWriter, r *http.Request, maxRecv int) *httpServerStream {
	rc := http.NewResponseController(w)
	// Requests keep arriving after the first response (a second watch
	// on the same stream); HTTP/1 would otherwise drain the body first.
	_ = rc.EnableFullDuplex()
	// Streamed as chunks whatever comes, as grpc-gateway does.
	w.Header().Set("Transfer-Encoding", "chunked")
	body := &limitedBody{r: r.Body, n: gwBodyLimit(maxRecv)}
	body.reset()
	return &httpServerStream{ctx: ctx, w: w, rc: rc, dec: json.NewDecoder(body), body: body, maxRecv: maxRecv}
}

func (s *httpServerStream) Context() context.Context     { return s.ctx }
func (s *httpServerStream) SetHeader(metadata.MD) error  { return nil }
func (s *httpServerStream) SendHeader(metadata.MD) error { return nil }
func (s *httpServerStream) SetTrailer(metadata.MD)       {}

// RecvMsg decodes the next request of the body. Like etcd's gateway, a
// request that is not valid JSON ends the client's side of the stream
// (the service sees io.EOF) rather than the stream.
func (s *httpServerStream) RecvMsg(m any) error {
	s.body.reset()
	err := gwDecode(s.dec, m.(proto.Message))
	switch {
	case err == nil:
		return gwCheckSize(m.(proto.Message), s.maxRecv)
	case s.body.exceeded:
		return errGWBodyTooLarge(s.maxRecv)
	case s.ctx.Err() != nil:
		return status.FromContextError(s.ctx.Err()).Err()
	}
	return io.EOF
}

// SendMsg writes one {"result":...} line and flushes it.
func (s *httpServerStream) SendMsg(m any) error {
	b, err := gwStreamChunk("result", m.(proto.Message))
	if err != nil {
		return err
	}
	if !s.wrote {
		// The gRPC response header etcd's gateway passes on once its
		// gRPC server has answered.
		s.w.Header().Set("Grpc-Metadata-Content-Type", "application/grpc")
	}
	return s.write(b)
}

func (s *httpServerStream) write(b []byte) error {
	if !s.wrote {
		s.w.Header().Set("Content-Type", "application/json")
		s.wrote = true
	}
	if _, err := s.w.Write(b); err != nil {
		return err
	}
	return s.rc.Flush()
}

// finish reports how the service ended. Before any response it is an
// ordinary error answer (its HTTP status, the status as the body); after,
// the status is 200 already and the error comes as a last
// {"error":...} line. A clean end (nil, or the client gone) adds nothing.
func (s *httpServerStream) finish(err error) {
	if err == nil || errors.Is(err, io.EOF) || errors.Is(s.ctx.Err(), context.Canceled) {
		return
	}
	st := status.Convert(err)
	b, merr := gwStreamChunk("error", st.Proto())
	if merr != nil {
		return
	}
	if !s.wrote {
		s.w.Header().Set("Content-Type", "application/json")
		s.w.WriteHeader(gatewayHTTPStatus(st.Code()))
	}
	_ = s.write(b)
}

// gwStream gives the typed Send/Recv of generated stream interfaces
// (pb.Watch_WatchServer and the like) to an httpServerStream.
type gwStream[Req, Resp any] struct{ grpc.ServerStream }

func (s gwStream[Req, Resp]) Send(m *Resp) error { return s.SendMsg(m) }

func (s gwStream[Req, Resp]) Recv() (*Req, error) {
	m := new(Req)
	if err := s.RecvMsg(m); err != nil {
		return nil, err
	}
	return m, nil
}
