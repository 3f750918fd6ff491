package api

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"io"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// snapshotSource is what Maintenance.Snapshot needs from the member: a
// consistent copy of its backend, as a stream of exactly size bytes.
type snapshotSource interface {
	SnapshotStream() (body io.ReadCloser, size int64, version string, err error)
}

// snapshotChunk is the payload of one response: small enough that a
// stream never holds much memory, large enough to keep per-message cost low.
const snapshotChunk = 64 << 10

// Snapshot streams the member's backend as etcd does: chunks whose
// remaining_bytes counts what is still to come after each, then one last
// response whose blob is the sha256 of every byte sent (remaining_bytes 0).
// `etcdctl snapshot save` checks that trailer. Like etcd's, the responses
// carry no header.
func (s *maintenanceServer) Snapshot(_ *pb.SnapshotRequest, stream pb.Maintenance_SnapshotServer) error {
	src, ok := s.m.(snapshotSource)
	if !ok {
		return status.Error(codes.Unimplemented, "etcdserver: snapshot is not supported by this member")
	}
	body, total, version, err := src.SnapshotStream()
	if err != nil {
		return togRPC(err)
	}
	defer body.Close()
	h := sha256.New()
	var sent int64
	for sent < total {
		// Send may keep the buffer after it returns, so each chunk gets
		// its own.
		buf := make([]byte, min(snapshotChunk, total-sent))
		n, err := io.ReadFull(body, buf)
		if err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
				err = fmt.Errorf("backend snapshot ended after %d of %d bytes", sent+int64(n), total)
			}
			return status.Error(codes.Internal, "etcdserver: "+err.Error())
		}
		h.Write(buf)
		sent += int64(n)
		resp := &pb.SnapshotResponse{RemainingBytes: uint64(total - sent), Blob: buf, Version: version}
		if err := stream.Send(resp); err != nil {
			return err
		}
	}
	return stream.Send(&pb.SnapshotResponse{RemainingBytes: 0, Blob: h.Sum(nil), Version: version})
}
