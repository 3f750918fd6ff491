package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"google.golang.org/grpc"
)

// fakeSnapshotStream replays canned responses, then io.EOF.
type fakeSnapshotStream struct {
	grpc.ClientStream
	resps []*pb.SnapshotResponse
}

func (f *fakeSnapshotStream) Recv() (*pb.SnapshotResponse, error) {
	if len(f.resps) == 0 {
		return nil, io.EOF
	}
	r := f.resps[0]
	f.resps = f.resps[1:]
	return r, nil
}

type fakeMaintenance struct {
	pb.MaintenanceClient
	resps []*pb.SnapshotResponse
}

func (f *fakeMaintenance) Snapshot(context.Context, *pb.SnapshotRequest, ...grpc.CallOption) (grpc.ServerStreamingClient[pb.SnapshotResponse], error) {
	return &fakeSnapshotStream{resps: f.resps}, nil
}

// etcdStream cuts db into chunks the way a server does and appends the
// sha256 response; trailer replaces the hash when non-nil.
func etcdStream(db []byte, chunk int, trailer []byte) []*pb.SnapshotResponse {
	var out []*pb.SnapshotResponse
	for off := 0; off < len(db); off += chunk {
		end := min(off+chunk, len(db))
		out = append(out, &pb.SnapshotResponse{RemainingBytes: uint64(len(db) - end), Blob: db[off:end], Version: "3.6.0"})
	}
	if trailer == nil {
		sum := sha256.Sum256(db)
		trailer = sum[:]
	}
	return append(out, &pb.SnapshotResponse{Blob: trailer, Version: "3.6.0"})
}

func TestSaveSnapshot(t *testing.T) {
	small := bytes.Repeat([]byte("page"), 1024)
	large := bytes.Repeat([]byte{7}, progressMinBytes+4096)
	for _, tc := range []struct {
		name      string
		resps     []*pb.SnapshotResponse
		wantErr   string
		wantBytes []byte
		progress  bool
	}{
		{"small", etcdStream(small, 1000, nil), "", small, false},
		{"large shows progress", etcdStream(large, 1<<20, nil), "", large, true},
		{"bad hash", etcdStream(small, 1000, make([]byte, 32)), "corrupted in transit", nil, false},
		{"missing hash", etcdStream(small, 1000, nil)[:5], "ended early", nil, false},
		{"short hash", etcdStream(small, 1000, []byte{1, 2}), "ended early", nil, false},
		{"nothing", nil, "without sending anything", nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "s.db")
			var progress bytes.Buffer
			version, err := saveSnapshot(context.Background(), &fakeMaintenance{resps: tc.resps}, path, &progress)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				if _, serr := os.Stat(path); !os.IsNotExist(serr) {
					t.Fatalf("a failed save left %s", path)
				}
				if _, serr := os.Stat(path + ".part"); !os.IsNotExist(serr) {
					t.Fatalf("a failed save left %s.part", path)
				}
				return
			}
			if err != nil || version != "3.6.0" {
				t.Fatalf("save: %q %v", version, err)
			}
			got, err := os.ReadFile(path)
			sum := sha256.Sum256(tc.wantBytes)
			if err != nil || !bytes.Equal(got, append(bytes.Clone(tc.wantBytes), sum[:]...)) {
				t.Fatalf("file is %d bytes (%v), want %d + 32", len(got), err, len(tc.wantBytes))
			}
			if shown := strings.Contains(progress.String(), "100%"); shown != tc.progress {
				t.Fatalf("progress output %q, want shown=%v", progress.String(), tc.progress)
			}
		})
	}
}

func TestRenderProgress(t *testing.T) {
	for _, tc := range []struct {
		done, total int64
		elapsed     time.Duration
		want        string
	}{
		{0, 100 << 20, 0, "[..............................]   0% 0 B / 105 MB"},
		{50 << 20, 100 << 20, 2 * time.Second, "[###############...............]  50% 52 MB / 105 MB  26 MB/s"},
		{100 << 20, 100 << 20, time.Second, "[##############################] 100% 105 MB / 105 MB  105 MB/s"},
	} {
		if got := renderProgress(tc.done, tc.total, tc.elapsed); got != tc.want {
			t.Errorf("renderProgress(%d, %d, %v) = %q, want %q", tc.done, tc.total, tc.elapsed, got, tc.want)
		}
	}
}
