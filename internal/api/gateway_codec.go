package api

import (
	"encoding/json"
	"io"
	"net/http"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
)

// The JSON encoding of etcd's gateway: protobuf's JSON mapping with the
// .proto field names (key, range_end, create_revision — not rangeEnd),
// fields at their default value left out, int64 as strings, bytes as
// base64, enums by name; unknown request fields are ignored. These are
// the JSONPb options etcd's embed/serve.go gives grpc-gateway.
var (
	gwMarshal   = protojson.MarshalOptions{UseProtoNames: true, EmitUnpopulated: false}
	gwUnmarshal = protojson.UnmarshalOptions{DiscardUnknown: true}
)

// gwDecode reads the next JSON value of dec into m. A body with no value
// at all gives io.EOF, which unary calls take as an empty request. Reading
// one value first (and parsing it second) is what makes the errors the
// ones grpc-gateway reports: encoding/json's for malformed JSON,
// protojson's for well-formed JSON of the wrong shape.
func gwDecode(dec *json.Decoder, m proto.Message) error {
	var raw json.RawMessage
	if err := dec.Decode(&raw); err != nil {
		return err
	}
	return gwUnmarshal.Unmarshal(raw, m)
}

// gwWriteMessage answers a unary call.
func gwWriteMessage(w http.ResponseWriter, m proto.Message) {
	b, err := gwMarshal.Marshal(m)
	if err != nil {
		gwWriteError(w, status.Error(codes.Internal, "marshal the response: "+err.Error()))
		return
	}
	w.Header().Set("Content-Type", "application/json")
	// The gRPC response header etcd's gateway passes on from its gRPC
	// server on every answered call.
	w.Header().Set("Grpc-Metadata-Content-Type", "application/grpc")
	_, _ = w.Write(b)
}

// gwWriteError answers a failed call as grpc-gateway does: the HTTP
// status of the gRPC code, and the google.rpc.Status as the body
// ({"code":5,"message":"etcdserver: requested lease not found"}).
func gwWriteError(w http.ResponseWriter, err error) {
	st := status.Convert(err)
	b, merr := gwMarshal.Marshal(st.Proto())
	if merr != nil {
		b = []byte(`{"code": 13, "message": "failed to marshal error message"}`)
	}
	w.Header().Del("Trailer")
	w.Header().Set("Content-Type", "application/json")
	if st.Code() == codes.Unauthenticated {
		w.Header().Set("WWW-Authenticate", st.Message())
	}
	w.WriteHeader(gatewayHTTPStatus(st.Code()))
	_, _ = w.Write(b)
}

// gwStreamChunk is one line of a streamed answer: {"result":{...}} or
// {"error":{...}}, compacted, then "\n" (newline-delimited JSON, as
// grpc-gateway streams).
func gwStreamChunk(key string, m proto.Message) ([]byte, error) {
	b, err := gwMarshal.Marshal(m)
	if err != nil {
		return nil, err
	}
	out, err := json.Marshal(map[string]json.RawMessage{key: b})
	if err != nil {
		return nil, err
	}
	return append(out, '\n'), nil
}

// gwBodyLimit bounds what is read of a request body, so a client cannot
// make the member buffer without end. The exact limit is checked on the
// decoded message (gwCheckSize), as gRPC checks it; JSON is larger than
// the protobuf it carries (base64 alone adds a third), hence the factor.
func gwBodyLimit(maxRecv int) int64 { return 4 * int64(maxRecv) }

// errGWBodyTooLarge answers a body beyond gwBodyLimit.
func errGWBodyTooLarge(maxRecv int) error {
	return status.Errorf(codes.ResourceExhausted,
		"etcdserver: request body larger than %d bytes: the request cannot fit --max-request-bytes (%d bytes of protobuf with gRPC overhead); send less per request",
		gwBodyLimit(maxRecv), maxRecv)
}

// gwCheckSize refuses a request larger than the gRPC server accepts, with
// gRPC's own error: through etcd's gateway the same request reaches the
// gRPC server and is refused there.
func gwCheckSize(m proto.Message, maxRecv int) error {
	if n := proto.Size(m); n > maxRecv {
		return status.Errorf(codes.ResourceExhausted, "grpc: received message larger than max (%d vs. %d)", n, maxRecv)
	}
	return nil
}

// limitedBody reads at most n bytes, then fails with errTooLarge; reset
// grants another n (each message of a stream gets its own budget).
type limitedBody struct {
	r        io.Reader
	n, left  int64
	exceeded bool
}

func (l *limitedBody) Read(p []byte) (int, error) {
	if l.left <= 0 {
		l.exceeded = true
		return 0, errBodyLimit
	}
	if int64(len(p)) > l.left {
		p = p[:l.left]
	}
	k, err := l.r.Read(p)
	l.left -= int64(k)
	return k, err
}

func (l *limitedBody) reset() { l.left = l.n }

var errBodyLimit = status.Error(codes.ResourceExhausted, "request body limit reached")
