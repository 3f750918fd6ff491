package api

import (
	"math"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

// RangeStream is etcd 3.7's streamed Range (Kubernetes 1.37 tries it first
// for lists, behind its EtcdRangeStream gate): the answer comes in chunks
// of keys, all read at the revision current when the stream started, and
// only the last chunk carries the header, More and Count. The first chunk
// is read like a Range (a ReadIndex unless serializable, then auth); the
// rest are local reads pinned to that revision, so a stream costs one
// barrier however long it is.
func (s *kvServer) RangeStream(r *pb.RangeRequest, rs pb.KV_RangeStreamServer) error {
	if err := checkRangeStream(r); err != nil {
		return err
	}
	ctx := rs.Context()
	// The stream interceptor knows the user; the range is checked here,
	// as a Range's would be.
	if err := authUnary(s.m, ctx, "/etcdserverpb.KV/Range", r); err != nil {
		return err
	}
	req := proto.Clone(r).(*pb.RangeRequest)
	if req.CountOnly {
		resp, err := s.m.Range(ctx, req)
		if err != nil {
			return togRPC(err)
		}
		out := &pb.RangeResponse{Header: s.m.Header(resp.GetHeader().GetRevision()), Count: resp.Count}
		return rs.Send(&pb.RangeStreamResponse{RangeResponse: out})
	}

	total := r.Limit
	if total <= 0 {
		total = math.MaxInt64
	}
	req.Limit = min(firstStreamChunk, total)
	var headerRev, count int64
	for {
		resp, err := s.m.Range(ctx, req)
		if err != nil {
			return togRPC(err)
		}
		if headerRev == 0 {
			// Pin every later chunk to the revision the stream started at;
			// this member has applied it, so they need no barrier.
			headerRev = resp.GetHeader().GetRevision()
			if req.Revision == 0 {
				req.Revision = headerRev
			}
			req.Serializable = true
		}
		count += int64(len(resp.Kvs))
		out := &pb.RangeResponse{Kvs: resp.Kvs}
		done := !resp.More || count >= total || len(resp.Kvs) == 0
		var next []byte
		if resp.More && len(resp.Kvs) > 0 {
			next = append(append([]byte(nil), resp.Kvs[len(resp.Kvs)-1].Key...), 0)
		}
		if done {
			out.Header, out.More, out.Count = s.m.Header(headerRev), resp.More, count
			if resp.More && next != nil {
				rest, err := s.m.Range(ctx, &pb.RangeRequest{Key: next, RangeEnd: req.RangeEnd, Revision: req.Revision, CountOnly: true, Serializable: true})
				if err != nil {
					return togRPC(err)
				}
				out.Count += rest.Count
			}
		}
		if err := rs.Send(&pb.RangeStreamResponse{RangeResponse: out}); err != nil {
			return err
		}
		if done {
			return nil
		}
		req.Key = next
		req.Limit = min(nextStreamChunk(req.Limit, proto.Size(resp)), total-count)
	}
}

// Chunk sizing, as etcd's: start small (a short list costs one small
// message), then double or halve the key count to keep each chunk near
// the default request size limit.
const (
	firstStreamChunk  = 10
	streamChunkTarget = 3 << 19 // 1.5 MiB, the default --max-request-bytes
)

func nextStreamChunk(limit int64, size int) int64 {
	switch {
	case size < streamChunkTarget/2:
		limit *= 2
	case size > streamChunkTarget*2:
		limit /= 2
	}
	return max(limit, 1)
}

// checkRangeStream refuses what etcd's RangeStream refuses, with its codes:
// chunks come in key order, and revision filters would make chunk sizes
// meaningless.
func checkRangeStream(r *pb.RangeRequest) error {
	if len(r.Key) == 0 {
		return rpctypes.ErrGRPCEmptyKey
	}
	if !validSort(r) {
		return rpctypes.ErrGRPCInvalidSortOption
	}
	if r.SortOrder != pb.RangeRequest_NONE && (r.SortTarget != pb.RangeRequest_KEY || r.SortOrder != pb.RangeRequest_ASCEND) {
		return status.Error(codes.Unimplemented, "RangeStream does not support custom sort orders")
	}
	if r.MinModRevision != 0 || r.MaxModRevision != 0 || r.MinCreateRevision != 0 || r.MaxCreateRevision != 0 {
		return status.Error(codes.Unimplemented, "RangeStream does not support revision filters")
	}
	return nil
}
