package transport

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

// syncBuffer is a log sink tests can read while the transport writes.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

type snapReport struct {
	id     uint64
	status raft.SnapshotStatus
}

// fakeRaft records what the transport hands to raft.
type fakeRaft struct {
	got         chan *raftpb.Message
	snaps       chan snapReport
	unreachable sync.Map // id -> *atomic.Int64
}

func newFakeRaft() *fakeRaft {
	return &fakeRaft{got: make(chan *raftpb.Message, 100000), snaps: make(chan snapReport, 16)}
}

func (f *fakeRaft) Process(ctx context.Context, m *raftpb.Message) error {
	select {
	case f.got <- m:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (f *fakeRaft) ReportUnreachable(id uint64) {
	v, _ := f.unreachable.LoadOrStore(id, new(atomic.Int64))
	v.(*atomic.Int64).Add(1)
}

func (f *fakeRaft) unreachableCount(id uint64) int64 {
	v, ok := f.unreachable.Load(id)
	if !ok {
		return 0
	}
	return v.(*atomic.Int64).Load()
}

func (f *fakeRaft) ReportSnapshot(id uint64, status raft.SnapshotStatus) {
	f.snaps <- snapReport{id, status}
}

// fakeSnaps hashes received snapshot data.
type fakeSnaps struct {
	fail error
	got  chan receivedSnap
}

type receivedSnap struct {
	m    *raftpb.Message
	sum  [32]byte
	size int64
}

func (f *fakeSnaps) ReceiveSnapshot(ctx context.Context, m *raftpb.Message, body io.Reader, size int64) error {
	h := sha256.New()
	n, err := io.Copy(h, body)
	if err != nil {
		return err
	}
	if n != size {
		return fmt.Errorf("got %d bytes, want %d", n, size)
	}
	if f.fail != nil {
		return f.fail
	}
	var sum [32]byte
	copy(sum[:], h.Sum(nil))
	f.got <- receivedSnap{m: m, sum: sum, size: n}
	return nil
}

// node is one transport served on a real loopback listener.
type node struct {
	id    uint64
	url   string
	tr    *Transport
	raft  *fakeRaft
	snaps *fakeSnaps
	logs  *syncBuffer
	srv   *http.Server
}

func startNode(t *testing.T, id, cluster uint64, opts ...func(*Config)) *node {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return startNodeOn(t, ln, id, cluster, opts...)
}

func startNodeOn(t *testing.T, ln net.Listener, id, cluster uint64, opts ...func(*Config)) *node {
	t.Helper()
	n := &node{id: id, url: "http://" + ln.Addr().String(), raft: newFakeRaft(),
		snaps: &fakeSnaps{got: make(chan receivedSnap, 4)}, logs: &syncBuffer{}}
	cfg := Config{
		LocalID: id, ClusterID: cluster, Raft: n.raft, Snapshots: n.snaps,
		Logger:      slog.New(slog.NewJSONHandler(n.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		DialTimeout: 500 * time.Millisecond,
	}
	for _, o := range opts {
		o(&cfg)
	}
	n.tr = New(cfg)
	mux := http.NewServeMux()
	mux.Handle("/cadre/peer/", n.tr.Handler())
	n.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = n.srv.Serve(ln) }()
	t.Cleanup(n.stop)
	return n
}

func (n *node) stop() {
	n.tr.Stop()
	_ = n.srv.Close()
}

// connect makes every node a peer of every other.
func connect(nodes ...*node) {
	for _, a := range nodes {
		for _, b := range nodes {
			if a != b {
				a.tr.AddPeer(b.id, []string{b.url})
			}
		}
	}
}

func msg(from, to, index uint64) *raftpb.Message {
	return &raftpb.Message{Type: raftpb.MsgApp.Enum(), From: proto.Uint64(from), To: proto.Uint64(to),
		Index: proto.Uint64(index), Term: proto.Uint64(1),
		Entries: []*raftpb.Entry{{Index: proto.Uint64(index), Data: []byte("payload")}}}
}

// recv waits for n messages or fails the test.
func recv(t *testing.T, f *fakeRaft, n int, timeout time.Duration) []*raftpb.Message {
	t.Helper()
	out := make([]*raftpb.Message, 0, n)
	deadline := time.After(timeout)
	for len(out) < n {
		select {
		case m := <-f.got:
			out = append(out, m)
		case <-deadline:
			t.Fatalf("received %d of %d messages in %v", len(out), n, timeout)
		}
	}
	return out
}

func eventually(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	for end := time.Now().Add(timeout); time.Now().Before(end); time.Sleep(10 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatalf("timed out after %v waiting for %s", timeout, what)
}

// closedPortURL returns a URL nobody listens on.
func closedPortURL(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	u := "http://" + ln.Addr().String()
	ln.Close()
	return u
}

var errTestRefused = errors.New("test receiver refuses snapshots")

func errorsIs(err, target error) bool { return errors.Is(err, target) }
