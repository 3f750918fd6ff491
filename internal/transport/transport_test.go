package transport

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

func TestFrameRoundTrip(t *testing.T) {
	big := make([]byte, 200<<10) // exercises the large-frame read path
	for _, tc := range []struct {
		name string
		m    *raftpb.Message
	}{
		{"empty", &raftpb.Message{}},
		{"heartbeat", &raftpb.Message{Type: raftpb.MsgHeartbeat.Enum(), To: proto.Uint64(2), From: proto.Uint64(1)}},
		{"append", msg(1, 2, 7)},
		{"large entry", &raftpb.Message{Type: raftpb.MsgApp.Enum(), Entries: []*raftpb.Entry{{Data: big}}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, err := appendFrame(nil, tc.m)
			if err != nil {
				t.Fatal(err)
			}
			r := bufio.NewReader(bytes.NewReader(append(b, b...)))
			for i := range 2 {
				got, err := readFrame(r, nil)
				if err != nil {
					t.Fatalf("frame %d: %v", i, err)
				}
				if !proto.Equal(got, tc.m) {
					t.Fatalf("frame %d: got %v, want %v", i, got, tc.m)
				}
			}
			if _, err := readFrame(r, nil); err != io.EOF {
				t.Fatalf("after last frame: got %v, want io.EOF", err)
			}
		})
	}
}

func TestReadFrameRejects(t *testing.T) {
	good, _ := appendFrame(nil, msg(1, 2, 3))
	for _, tc := range []struct {
		name string
		in   []byte
		want error
	}{
		{"too large", []byte{0x80, 0x80, 0x80, 0x40}, ErrFrameTooLarge}, // 128 MiB
		{"huge varint", bytes.Repeat([]byte{0xff}, 11), ErrBadFrame},
		{"truncated length", []byte{0x80}, ErrBadFrame},
		{"truncated body", good[:len(good)-1], ErrBadFrame},
		{"lying large length", []byte{0x80, 0x80, 0x04, 1, 2, 3}, ErrBadFrame}, // 64 KiB promised
		{"not protobuf", []byte{3, 0xff, 0xff, 0xff}, ErrBadFrame},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := readFrame(bufio.NewReader(bytes.NewReader(tc.in)), nil)
			if !errorsIs(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
		})
	}
}

func TestTwoMembersExchangeInOrder(t *testing.T) {
	a, b := startNode(t, 1, 0xc1), startNode(t, 2, 0xc1)
	connect(a, b)
	const n = 2000
	for i := range uint64(n) {
		a.tr.Send([]*raftpb.Message{msg(1, 2, i)})
		b.tr.Send([]*raftpb.Message{msg(2, 1, i)})
	}
	for _, tc := range []struct {
		name string
		to   *node
		from uint64
	}{{"a->b", b, 1}, {"b->a", a, 2}} {
		got := recv(t, tc.to.raft, n, 10*time.Second)
		for i, m := range got {
			if m.GetIndex() != uint64(i) || m.GetFrom() != tc.from {
				t.Fatalf("%s: message %d has index %d from %x", tc.name, i, m.GetIndex(), m.GetFrom())
			}
		}
	}
	if a.tr.ActiveSince(2).IsZero() || b.tr.ActiveSince(1).IsZero() {
		t.Fatal("ActiveSince is zero on a connected pair")
	}
	if !a.tr.ActiveSince(99).IsZero() {
		t.Fatal("ActiveSince of an unknown member is not zero")
	}
}

func TestThreeMembersExchangeInOrder(t *testing.T) {
	nodes := []*node{startNode(t, 1, 7), startNode(t, 2, 7), startNode(t, 3, 7)}
	connect(nodes...)
	const n = 300
	for i := range uint64(n) {
		for _, from := range nodes {
			var batch []*raftpb.Message
			for _, to := range nodes {
				if to != from {
					batch = append(batch, msg(from.id, to.id, i))
				}
			}
			from.tr.Send(batch)
		}
	}
	for _, to := range nodes {
		next := map[uint64]uint64{}
		for _, m := range recv(t, to.raft, 2*n, 10*time.Second) {
			if m.GetTo() != to.id || m.GetIndex() != next[m.GetFrom()] {
				t.Fatalf("member %d: got index %d from %d, want %d", to.id, m.GetIndex(), m.GetFrom(), next[m.GetFrom()])
			}
			next[m.GetFrom()]++
		}
	}
}

// TestHandshakeRefusals drives the stream endpoint with raw requests.
func TestHandshakeRefusals(t *testing.T) {
	removed := uint64(0x99)
	srv := startNode(t, 0xb, 0xc1, func(c *Config) {
		c.IsRemoved = func(id uint64) bool { return id == removed }
	})
	hdr := func(cluster, from, to uint64) map[string]string {
		return map[string]string{"Connection": "Upgrade", "Upgrade": upgradeProto,
			hdrClusterID: idString(cluster), hdrFrom: idString(from), hdrTo: idString(to)}
	}
	for _, tc := range []struct {
		name     string
		method   string
		path     string
		headers  map[string]string
		code     int
		bodyHas  []string
		logHas   []string
		noUpgrad bool
	}{
		{"wrong cluster", "GET", streamPath, hdr(0xc2, 0xa, 0xb), 412,
			[]string{idString(0xc1), idString(0xc2)},
			[]string{"cluster ID mismatch", idString(0xc1), idString(0xc2), idString(0xa), idString(0xb)}, false},
		{"wrong member", "GET", streamPath, hdr(0xc1, 0xa, 0xd), 412,
			[]string{idString(0xb), idString(0xd)},
			[]string{"member ID mismatch", idString(0xa), idString(0xb), idString(0xd)}, false},
		{"removed sender", "GET", streamPath, hdr(0xc1, removed, 0xb), 410,
			[]string{removedText}, []string{"removed", idString(removed), idString(0xb)}, false},
		{"wrong method", "POST", streamPath, hdr(0xc1, 0xa, 0xb), 405, nil, nil, false},
		{"no upgrade", "GET", streamPath, hdr(0xc1, 0xa, 0xb), 426, nil, nil, true},
		{"bad id header", "GET", streamPath, map[string]string{"Connection": "Upgrade", "Upgrade": upgradeProto, hdrClusterID: "zz"}, 400, []string{hdrClusterID}, nil, false},
		{"unknown path", "GET", "/cadre/peer/v9/x", hdr(0xc1, 0xa, 0xb), 404, nil, nil, false},
		{"snapshot without size", "POST", snapshotPath, hdr(0xc1, 0xa, 0xb), 400, []string{hdrSnapSize}, nil, false},
		{"snapshot wrong cluster", "POST", snapshotPath, hdr(0xc2, 0xa, 0xb), 412, []string{idString(0xc2)}, nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(tc.method, srv.url+tc.path, nil)
			for k, v := range tc.headers {
				if !(tc.noUpgrad && k == "Upgrade") {
					req.Header.Set(k, v)
				}
			}
			resp, err := (&http.Client{Timeout: 5 * time.Second}).Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.code {
				t.Fatalf("status %d (%s), want %d", resp.StatusCode, body, tc.code)
			}
			for _, s := range tc.bodyHas {
				if !strings.Contains(string(body), s) {
					t.Errorf("body %q lacks %q", body, s)
				}
			}
			logs := srv.logs.String()
			for _, s := range tc.logHas {
				if !strings.Contains(logs, s) {
					t.Errorf("log lacks %q:\n%s", s, logs)
				}
			}
		})
	}

	t.Run("garbage", func(t *testing.T) {
		conn, err := net.DialTimeout("tcp", strings.TrimPrefix(srv.url, "http://"), time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
		fmt.Fprint(conn, "\x00\x01garbage\r\n\r\n")
		line, _ := bufio.NewReader(conn).ReadString('\n')
		if !strings.Contains(line, " 400 ") {
			t.Fatalf("got %q, want a 400 answer", line)
		}
	})
}

// TestClusterMismatchBetweenTransports checks both sides log the refusal
// with both IDs and that nothing is delivered.
func TestClusterMismatchBetweenTransports(t *testing.T) {
	a, b := startNode(t, 1, 0xaaaa), startNode(t, 2, 0xbbbb)
	a.tr.AddPeer(2, []string{b.url})
	a.tr.Send([]*raftpb.Message{msg(1, 2, 1)})
	eventually(t, 5*time.Second, "412 logged on both sides", func() bool {
		return strings.Contains(b.logs.String(), "cluster ID mismatch") &&
			strings.Contains(a.logs.String(), "cluster ID mismatch")
	})
	for _, s := range []string{idString(0xaaaa), idString(0xbbbb), idString(1), idString(2)} {
		if !strings.Contains(b.logs.String(), s) || !strings.Contains(a.logs.String(), s) {
			t.Errorf("a log or b log lacks %q\nA: %s\nB: %s", s, a.logs, b.logs)
		}
	}
	if len(b.raft.got) != 0 {
		t.Fatal("a message crossed a cluster ID mismatch")
	}
	if a.raft.unreachableCount(2) == 0 {
		t.Fatal("refused peer not reported unreachable")
	}
}

func TestRemovedSenderGetsGone(t *testing.T) {
	var fired atomic.Int32
	a := startNode(t, 1, 5, func(c *Config) { c.OnRemoved = func() { fired.Add(1) } })
	b := startNode(t, 2, 5, func(c *Config) { c.IsRemoved = func(id uint64) bool { return id == 1 } })
	a.tr.AddPeer(2, []string{b.url})
	a.tr.Send([]*raftpb.Message{msg(1, 2, 1)})
	eventually(t, 5*time.Second, "OnRemoved", func() bool { return fired.Load() > 0 })
	// It must stop dialing: no further refusals show up on b.
	refusals := strings.Count(b.logs.String(), "sender was removed")
	a.tr.Send([]*raftpb.Message{msg(1, 2, 2)})
	time.Sleep(300 * time.Millisecond)
	if got := fired.Load(); got != 1 {
		t.Fatalf("OnRemoved fired %d times, want 1", got)
	}
	if now := strings.Count(b.logs.String(), "sender was removed"); now != refusals || refusals != 1 {
		t.Fatalf("b refused %d then %d times; want exactly one dial", refusals, now)
	}
	if len(b.raft.got) != 0 {
		t.Fatal("a removed member's message was delivered")
	}
}

// TestDeadPeersDoNotBlock sends to a closed port, a listener that never
// answers, and a live peer: Send stays fast and the live peer gets all.
func TestDeadPeersDoNotBlock(t *testing.T) {
	a, b := startNode(t, 1, 5), startNode(t, 2, 5)
	silent, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	go func() { // accept and hold connections without answering
		var held []net.Conn
		defer func() {
			for _, c := range held {
				c.Close()
			}
		}()
		for {
			c, err := silent.Accept()
			if err != nil {
				return
			}
			held = append(held, c)
		}
	}()
	a.tr.AddPeer(2, []string{b.url})
	a.tr.AddPeer(3, []string{closedPortURL(t)})
	a.tr.AddPeer(4, []string{"http://" + silent.Addr().String()})

	const n = 3000
	var slowest time.Duration
	for i := range uint64(n) {
		// Dead peers get 3 messages per round: their queues overflow.
		batch := []*raftpb.Message{msg(1, 3, i), msg(1, 3, i), msg(1, 4, i), msg(1, 4, i), msg(1, 2, i), msg(1, 3, i), msg(1, 4, i)}
		start := time.Now()
		a.tr.Send(batch)
		slowest = max(slowest, time.Since(start))
	}
	// A Send blocked on a dead peer would take at least the 500ms dial
	// timeout; the margin absorbs scheduling noise on a busy machine.
	if slowest > 250*time.Millisecond {
		t.Fatalf("slowest Send took %v", slowest)
	}
	got := recv(t, b.raft, n, 10*time.Second)
	for i, m := range got {
		if m.GetIndex() != uint64(i) {
			t.Fatalf("live peer: message %d has index %d", i, m.GetIndex())
		}
	}
	eventually(t, 5*time.Second, "dead peers reported unreachable", func() bool {
		return a.raft.unreachableCount(3) > 0 && a.raft.unreachableCount(4) > 0
	})
	if a.raft.unreachableCount(2) != 0 {
		t.Fatal("live peer reported unreachable")
	}
	if !a.tr.ActiveSince(3).IsZero() || !a.tr.ActiveSince(4).IsZero() {
		t.Fatal("ActiveSince set for a peer that never connected")
	}
}

func TestReconnectAfterReceiverRestart(t *testing.T) {
	a, b := startNode(t, 1, 5), startNode(t, 2, 5)
	connect(a, b)
	a.tr.Send([]*raftpb.Message{msg(1, 2, 0)})
	recv(t, b.raft, 1, 5*time.Second)
	first := a.tr.ActiveSince(2)

	addr := strings.TrimPrefix(b.url, "http://")
	b.stop()
	eventually(t, 5*time.Second, "a to notice the closed stream", func() bool { return a.tr.ActiveSince(2).IsZero() })
	var ln net.Listener
	eventually(t, 5*time.Second, "the port to be free again", func() bool {
		var err error
		ln, err = net.Listen("tcp", addr)
		return err == nil
	})
	b2 := startNodeOn(t, ln, 2, 5)
	// Messages sent into a dying connection may be lost (raft resends);
	// keep sending until one arrives on the new receiver.
	var got bool
	for i := uint64(1); i < 500 && !got; i++ {
		a.tr.Send([]*raftpb.Message{msg(1, 2, i)})
		select {
		case <-b2.raft.got:
			got = true
		case <-time.After(20 * time.Millisecond):
		}
	}
	if !got {
		t.Fatal("no message reached the restarted receiver")
	}
	if since := a.tr.ActiveSince(2); !since.After(first) {
		t.Fatalf("ActiveSince %v not after the first connection %v", since, first)
	}
}

func TestUpdateAndRemovePeer(t *testing.T) {
	a, b := startNode(t, 1, 5), startNode(t, 2, 5)
	a.tr.AddPeer(2, []string{closedPortURL(t)})
	a.tr.Send([]*raftpb.Message{msg(1, 2, 0)})
	eventually(t, 5*time.Second, "unreachable report", func() bool { return a.raft.unreachableCount(2) > 0 })
	a.tr.UpdatePeer(2, []string{b.url})
	eventually(t, 5*time.Second, "connection after UpdatePeer", func() bool { return !a.tr.ActiveSince(2).IsZero() })
	a.tr.Send([]*raftpb.Message{msg(1, 2, 1)})
	// Message 0 may or may not have been dropped with the failed dial.
	if m := recv(t, b.raft, 1, 5*time.Second)[0]; m.GetIndex() != 1 {
		if m = recv(t, b.raft, 1, 5*time.Second)[0]; m.GetIndex() != 1 {
			t.Fatalf("got index %d, want 1", m.GetIndex())
		}
	}
	a.tr.RemovePeer(2)
	eventually(t, 5*time.Second, "inbound stream closed on b", func() bool { return b.tr.ActiveSince(1).IsZero() })
	if !a.tr.ActiveSince(2).IsZero() {
		t.Fatal("ActiveSince set after RemovePeer")
	}
	a.tr.Send([]*raftpb.Message{msg(1, 2, 2)})
	time.Sleep(100 * time.Millisecond)
	if len(b.raft.got) != 0 {
		t.Fatal("message delivered to a removed peer")
	}
}

func TestSendRejectsMsgSnap(t *testing.T) {
	a := startNode(t, 1, 5)
	a.tr.AddPeer(2, []string{closedPortURL(t)})
	a.tr.Send([]*raftpb.Message{{Type: raftpb.MsgSnap.Enum(), To: proto.Uint64(2)}})
	select {
	case r := <-a.raft.snaps:
		if r.id != 2 || r.status != 2 {
			t.Fatalf("got report %+v, want failure for 2", r)
		}
	case <-time.After(time.Second):
		t.Fatal("no snapshot failure reported")
	}
}

// TestPeerStreamCutsBackoffShort: a member that dials us is up, so our own
// dial to it must not wait out its backoff. The backoff here is a minute,
// longer than the test waits: only the wake can connect a to b in time.
// (A learner added and then started hears the leader at once this way.)
func TestPeerStreamCutsBackoffShort(t *testing.T) {
	oldMin, oldMax := backoffMin, backoffMax
	backoffMin, backoffMax = time.Minute, time.Minute
	t.Cleanup(func() { backoffMin, backoffMax = oldMin, oldMax })

	a := startNode(t, 1, 5)
	bURL := closedPortURL(t)
	a.tr.AddPeer(2, []string{bURL})
	a.tr.Send([]*raftpb.Message{msg(1, 2, 1)})
	eventually(t, 5*time.Second, "a's dial to b to fail", func() bool {
		return strings.Contains(a.logs.String(), "cannot connect to peer")
	})

	var ln net.Listener
	eventually(t, 5*time.Second, "b's port to be free", func() bool {
		var err error
		ln, err = net.Listen("tcp", strings.TrimPrefix(bURL, "http://"))
		return err == nil
	})
	b := startNodeOn(t, ln, 2, 5)
	b.tr.AddPeer(1, []string{a.url}) // b dials a: a learns b is up
	b.tr.Send([]*raftpb.Message{msg(2, 1, 1)})
	recv(t, a.raft, 1, 5*time.Second)

	var got bool
	for i := uint64(2); i < 250 && !got; i++ {
		a.tr.Send([]*raftpb.Message{msg(1, 2, i)})
		select {
		case <-b.raft.got:
			got = true
		case <-time.After(20 * time.Millisecond):
		}
	}
	if !got {
		t.Fatal("a did not reach b within 5s of b's stream arriving: it waited out its backoff")
	}
}
