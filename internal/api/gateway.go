package api

import (
	"context"
	"io"
	"net/http"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
)

// The members API over HTTP/JSON at etcd's gateway paths, for tools that
// use curl instead of gRPC. Requests and responses are the gRPC messages
// in protobuf's JSON mapping, as etcd's gateway speaks.

func registerGateway(mux *http.ServeMux, m Member) {
	cs := &clusterServer{m: m}
	handle := func(path string, newReq func() proto.Message, call func(context.Context, proto.Message) (proto.Message, error)) {
		mux.HandleFunc("POST "+path, func(w http.ResponseWriter, r *http.Request) {
			body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
			if err != nil {
				gatewayError(w, http.StatusBadRequest, err.Error())
				return
			}
			req := newReq()
			if len(body) > 0 {
				if err := (protojson.UnmarshalOptions{DiscardUnknown: true}).Unmarshal(body, req); err != nil {
					gatewayError(w, http.StatusBadRequest, "invalid JSON request: "+err.Error())
					return
				}
			}
			resp, err := call(r.Context(), req)
			if err != nil {
				st := status.Convert(err)
				gatewayError(w, httpStatus(st.Code()), st.Message())
				return
			}
			b, err := protojson.MarshalOptions{UseProtoNames: true}.Marshal(resp)
			if err != nil {
				gatewayError(w, http.StatusInternalServerError, err.Error())
				return
			}
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write(b)
		})
	}
	handle("/v3/cluster/member/list", func() proto.Message { return &pb.MemberListRequest{} },
		func(ctx context.Context, r proto.Message) (proto.Message, error) {
			return cs.MemberList(ctx, r.(*pb.MemberListRequest))
		})
	handle("/v3/cluster/member/add", func() proto.Message { return &pb.MemberAddRequest{} },
		func(ctx context.Context, r proto.Message) (proto.Message, error) {
			return cs.MemberAdd(ctx, r.(*pb.MemberAddRequest))
		})
	handle("/v3/cluster/member/remove", func() proto.Message { return &pb.MemberRemoveRequest{} },
		func(ctx context.Context, r proto.Message) (proto.Message, error) {
			return cs.MemberRemove(ctx, r.(*pb.MemberRemoveRequest))
		})
	handle("/v3/cluster/member/update", func() proto.Message { return &pb.MemberUpdateRequest{} },
		func(ctx context.Context, r proto.Message) (proto.Message, error) {
			return cs.MemberUpdate(ctx, r.(*pb.MemberUpdateRequest))
		})
	handle("/v3/cluster/member/promote", func() proto.Message { return &pb.MemberPromoteRequest{} },
		func(ctx context.Context, r proto.Message) (proto.Message, error) {
			return cs.MemberPromote(ctx, r.(*pb.MemberPromoteRequest))
		})
}

func gatewayError(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	b, _ := protojson.Marshal(status.New(codeFromHTTP(code), msg).Proto())
	_, _ = w.Write(b)
}
