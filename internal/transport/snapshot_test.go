package transport

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"io"
	"net"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

func snapMsg(from, to, index uint64) *raftpb.Message {
	return &raftpb.Message{Type: raftpb.MsgSnap.Enum(), From: proto.Uint64(from), To: proto.Uint64(to), Term: proto.Uint64(3),
		Snapshot: &raftpb.Snapshot{Metadata: &raftpb.SnapshotMetadata{Index: proto.Uint64(index), Term: proto.Uint64(3),
			ConfState: &raftpb.ConfState{Voters: []uint64{1, 2}}}}}
}

// trackedBody records whether the transport closed it.
type trackedBody struct {
	io.Reader
	closed atomic.Bool
}

func (b *trackedBody) Close() error { b.closed.Store(true); return nil }

func waitReport(t *testing.T, f *fakeRaft, id uint64, want raft.SnapshotStatus) {
	t.Helper()
	select {
	case r := <-f.snaps:
		if r.id != id || r.status != want {
			t.Fatalf("got report %+v, want id %d status %d", r, id, want)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("no snapshot report")
	}
}

func TestSnapshotStreamed(t *testing.T) {
	a, b := startNode(t, 1, 5), startNode(t, 2, 5)
	connect(a, b)
	data := make([]byte, 8<<20)
	_, _ = rand.Read(data)
	body := &trackedBody{Reader: bytes.NewReader(data)}
	a.tr.SendSnapshot(snapMsg(1, 2, 42), body, int64(len(data)))
	waitReport(t, a.raft, 2, raft.SnapshotFinish)
	select {
	case got := <-b.snaps.got:
		if got.sum != sha256.Sum256(data) || got.size != int64(len(data)) {
			t.Fatalf("received %d bytes with a different hash", got.size)
		}
		if !proto.Equal(got.m, snapMsg(1, 2, 42)) {
			t.Fatalf("received message %v", got.m)
		}
	default:
		t.Fatal("receiver reported success but got no snapshot")
	}
	if !body.closed.Load() {
		t.Fatal("snapshot body not closed")
	}
	for _, n := range []*node{a, b} {
		logs := n.logs.String()
		for _, s := range []string{"snapshot: started", "snapshot: progress", "snapshot: done", `"index":42`} {
			if !strings.Contains(logs, s) {
				t.Errorf("member %d log lacks %q", n.id, s)
			}
		}
	}
}

func TestSnapshotFailures(t *testing.T) {
	data := bytes.Repeat([]byte("x"), 1<<20)
	for _, tc := range []struct {
		name string
		size int64 // announced
		peer bool  // known peer
		fail error // receiver error
	}{
		{"receiver refuses", int64(len(data)), true, errTestRefused},
		{"body shorter than size", int64(len(data)) + 10, true, nil},
		{"body longer than size", int64(len(data)) - 10, true, nil},
		{"unknown peer", int64(len(data)), false, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, b := startNode(t, 1, 5), startNode(t, 2, 5)
			b.snaps.fail = tc.fail
			if tc.peer {
				connect(a, b)
			}
			body := &trackedBody{Reader: bytes.NewReader(data)}
			a.tr.SendSnapshot(snapMsg(1, 2, 9), body, tc.size)
			waitReport(t, a.raft, 2, raft.SnapshotFailure)
			if !body.closed.Load() {
				t.Fatal("snapshot body not closed")
			}
			if len(b.snaps.got) != 0 {
				t.Fatal("receiver accepted a bad snapshot")
			}
		})
	}
}

func TestSnapshotToDeadPeerFails(t *testing.T) {
	a := startNode(t, 1, 5)
	a.tr.AddPeer(2, []string{closedPortURL(t)})
	a.tr.SendSnapshot(snapMsg(1, 2, 9), io.NopCloser(bytes.NewReader([]byte("db"))), 2)
	waitReport(t, a.raft, 2, raft.SnapshotFailure)
}

func TestStopLeavesNoGoroutines(t *testing.T) {
	before := runtime.NumGoroutine()
	func() {
		nodes := []*node{startNode(t, 1, 5), startNode(t, 2, 5), startNode(t, 3, 5)}
		defer func() {
			stopped := make(chan struct{})
			go func() {
				defer close(stopped)
				for _, n := range nodes {
					n.stop()
				}
			}()
			select {
			case <-stopped:
			case <-time.After(5 * time.Second):
				t.Fatal("Stop did not return within 5s")
			}
		}()
		connect(nodes...)
		nodes[0].tr.AddPeer(4, []string{closedPortURL(t)}) // a writer stuck in backoff
		for i := range uint64(50) {
			nodes[0].tr.Send([]*raftpb.Message{msg(1, 2, i), msg(1, 3, i), msg(1, 4, i)})
			nodes[1].tr.Send([]*raftpb.Message{msg(2, 1, i)})
		}
		recv(t, nodes[1].raft, 50, 5*time.Second)
		recv(t, nodes[0].raft, 50, 5*time.Second)
		data := make([]byte, 1<<20)
		nodes[0].tr.SendSnapshot(snapMsg(1, 3, 5), io.NopCloser(bytes.NewReader(data)), int64(len(data)))
		waitReport(t, nodes[0].raft, 3, raft.SnapshotFinish)
		nodes[2].tr.RemovePeer(1)
	}()
	var now int
	for end := time.Now().Add(5 * time.Second); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
		if now = runtime.NumGoroutine(); now <= before {
			return
		}
	}
	buf := make([]byte, 1<<20)
	t.Fatalf("%d goroutines before, %d after Stop:\n%s", before, now, buf[:runtime.Stack(buf, true)])
}

// TestStopUnblocksStalledSnapshotReceiver: a sender that stops mid-body
// must not keep Stop waiting.
func TestStopUnblocksStalledSnapshotReceiver(t *testing.T) {
	b := startNode(t, 2, 5)
	frame, _ := appendFrame(nil, snapMsg(1, 2, 7))
	conn, err := net.DialTimeout("tcp", strings.TrimPrefix(b.url, "http://"), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	const size = 1 << 20
	fmt.Fprintf(conn, "POST %s HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n%s: %s\r\n%s: %s\r\n%s: %s\r\n%s: %d\r\n\r\n",
		snapshotPath, len(frame)+size, hdrClusterID, idString(5), hdrFrom, idString(1), hdrTo, idString(2), hdrSnapSize, size)
	conn.Write(frame)
	conn.Write(make([]byte, 1000)) // then stall
	eventually(t, 5*time.Second, "receiver to start", func() bool {
		return strings.Contains(b.logs.String(), "receiving snapshot: started")
	})
	stopped := make(chan struct{})
	go func() { b.tr.Stop(); close(stopped) }()
	select {
	case <-stopped:
	case <-time.After(5 * time.Second):
		t.Fatal("Stop blocked by a stalled snapshot upload")
	}
	if !strings.Contains(b.logs.String(), "snapshot receive failed") {
		t.Fatalf("stalled receive not reported:\n%s", b.logs)
	}
}
