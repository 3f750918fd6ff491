package transport

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
)

// ErrStopped is returned once the transport has been stopped.
var ErrStopped = errors.New("transport: stopped")

// Raft is the local raft node as the transport sees it.
type Raft interface {
	// Process steps a message received from a peer.
	Process(ctx context.Context, m *raftpb.Message) error
	ReportUnreachable(id uint64)
	ReportSnapshot(id uint64, status raft.SnapshotStatus)
}

// SnapshotReceiver stores an incoming snapshot's db stream, then steps m.
// body yields exactly size bytes or fails with an error.
type SnapshotReceiver interface {
	ReceiveSnapshot(ctx context.Context, m *raftpb.Message, body io.Reader, size int64) error
}

// Config configures a Transport.
type Config struct {
	LocalID   uint64
	ClusterID uint64 // 0 until known; see SetClusterID
	Raft      Raft
	Snapshots SnapshotReceiver
	Logger    *slog.Logger
	// IsRemoved reports whether a member ID was removed from the cluster;
	// such peers are refused with 410 Gone. Optional.
	IsRemoved func(id uint64) bool
	// OnRemoved is called once when a peer answers 410: we were removed.
	// Optional.
	OnRemoved func()
	// Incarnation identifies the local data dir; sent with every stream
	// and snapshot (0: not sent).
	Incarnation uint64
	// CheckIncarnation judges a sender's incarnation (never 0); an error
	// refuses it with 409 Conflict and the error as the answer. Optional.
	CheckIncarnation func(from, incarnation uint64) error
	// OnStaleIdentity is called once when a peer answers 409: the cluster
	// knows this member ID with another data dir. Optional.
	OnStaleIdentity func(reason string)
	DialTimeout     time.Duration // dial and handshake limit; 0 means 1s
	// TLS dials https peer URLs (client certificate, peer CA); nil
	// means Go's defaults for https URLs.
	TLS *tls.Config
}

// Transport sends raft messages to peers and receives theirs. All methods
// are safe for concurrent use.
type Transport struct {
	cfg       Config
	lg        *slog.Logger
	clusterID atomic.Uint64
	handler   http.Handler
	snapHTTP  *http.Client

	ctx    context.Context // cancelled by Stop
	cancel context.CancelFunc
	wg     sync.WaitGroup // every goroutine the transport runs or borrows

	removedOnce sync.Once
	staleOnce   sync.Once

	sendMu  sync.Mutex
	sending map[uint64]*sendState // snapshots being sent, by peer

	mu      sync.Mutex
	stopped bool
	peers   map[uint64]*peer
	inbound map[uint64]*inboundStream // at most one live stream per sender
}

// New returns a Transport; it dials nobody until AddPeer.
func New(cfg Config) *Transport {
	if cfg.DialTimeout <= 0 {
		cfg.DialTimeout = time.Second
	}
	lg := cfg.Logger
	if lg == nil {
		lg = slog.New(slog.DiscardHandler)
	}
	lg = lg.With("local-member-id", idString(cfg.LocalID))
	ctx, cancel := context.WithCancel(context.Background())
	t := &Transport{
		cfg:     cfg,
		lg:      lg,
		ctx:     ctx,
		cancel:  cancel,
		peers:   make(map[uint64]*peer),
		inbound: make(map[uint64]*inboundStream),
		sending: make(map[uint64]*sendState),
	}
	t.clusterID.Store(cfg.ClusterID)
	t.snapHTTP = &http.Client{Transport: &http.Transport{
		DialContext:     (&net.Dialer{Timeout: cfg.DialTimeout}).DialContext,
		TLSClientConfig: cfg.TLS,
		// Snapshots are rare: a fresh connection each time leaves no idle
		// connection (and goroutines) behind after Stop.
		DisableKeepAlives:     true,
		ResponseHeaderTimeout: 0, // the snapshot watchdog bounds the wait
	}}
	t.handler = http.HandlerFunc(t.serveHTTP)
	return t
}

// Handler serves /cadre/peer/v1/stream and /cadre/peer/v1/snapshot. Mount
// it under "/cadre/peer/" without stripping the prefix.
func (t *Transport) Handler() http.Handler { return t.handler }

// SetClusterID sets the cluster ID presented to and required from peers.
func (t *Transport) SetClusterID(id uint64) { t.clusterID.Store(id) }

// AddPeer starts a writer for peer id dialing urls in turn. Adding a known
// peer updates its URLs.
func (t *Transport) AddPeer(id uint64, urls []string) {
	if id == t.cfg.LocalID || id == 0 {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.stopped {
		return
	}
	if p, ok := t.peers[id]; ok {
		p.setURLs(urls)
		return
	}
	p := newPeer(t, id, urls)
	t.peers[id] = p
	t.wg.Add(1)
	go func() {
		defer t.wg.Done()
		p.run()
	}()
	t.lg.Info("added peer", "remote-member-id", idString(id), "peer-urls", urls)
}

// UpdatePeer replaces the URLs of peer id and re-dials.
func (t *Transport) UpdatePeer(id uint64, urls []string) {
	t.mu.Lock()
	p := t.peers[id]
	t.mu.Unlock()
	if p == nil {
		t.lg.Warn("cannot update unknown peer", "remote-member-id", idString(id))
		return
	}
	p.setURLs(urls)
	t.lg.Info("updated peer", "remote-member-id", idString(id), "peer-urls", urls)
}

// RemovePeer stops sending to peer id and closes its inbound stream. Its
// goroutines exit promptly; Stop waits for them.
func (t *Transport) RemovePeer(id uint64) {
	t.mu.Lock()
	p := t.peers[id]
	delete(t.peers, id)
	in := t.inbound[id]
	delete(t.inbound, id)
	t.mu.Unlock()
	if p != nil {
		p.cancel()
		t.lg.Info("removed peer", "remote-member-id", idString(id))
	}
	if in != nil {
		in.conn.Close()
	}
}

// Send queues msgs for their peers and never blocks. A message for an
// unknown peer is dropped; one for a peer whose queue is full is dropped
// and the peer reported unreachable so raft retries. MsgSnap must go
// through SendSnapshot: here it is dropped and reported as failed.
func (t *Transport) Send(msgs []*raftpb.Message) {
	// Resolve peers under the lock but call into raft without it, so a
	// Raft implementation may call back into the transport.
	targets := make([]*peer, len(msgs))
	t.mu.Lock()
	if t.stopped {
		t.mu.Unlock()
		return
	}
	for i, m := range msgs {
		targets[i] = t.peers[m.GetTo()]
	}
	t.mu.Unlock()

	for i, m := range msgs {
		to := m.GetTo()
		if m.GetType() == raftpb.MsgSnap {
			t.lg.Error("MsgSnap passed to Send; use SendSnapshot", "remote-member-id", idString(to))
			t.cfg.Raft.ReportSnapshot(to, raft.SnapshotFailure)
			continue
		}
		p := targets[i]
		if p == nil {
			t.lg.Debug("dropped message to unknown peer", "remote-member-id", idString(to), "type", m.GetType().String())
			continue
		}
		if p.gone.Load() {
			continue // it answered 410: we were removed, nothing to tell it
		}
		select {
		case p.queue <- m:
		default:
			p.logDrop(m)
			t.cfg.Raft.ReportUnreachable(to)
		}
	}
}

// ActiveSince returns the start of the oldest connection to or from peer
// id that is still alive, in either direction (our outbound writer stream
// or the peer's inbound stream), or the zero time if neither is up. So the
// peer has been continuously reachable since the returned time.
func (t *Transport) ActiveSince(id uint64) time.Time {
	t.mu.Lock()
	defer t.mu.Unlock()
	var since time.Time
	if p := t.peers[id]; p != nil {
		if ns := p.activeSince.Load(); ns != 0 {
			since = time.Unix(0, ns)
		}
	}
	if in := t.inbound[id]; in != nil && (since.IsZero() || in.since.Before(since)) {
		since = in.since
	}
	return since
}

// Stop closes every connection and waits for all goroutines. Snapshot
// transfers in flight fail. Stop is idempotent.
func (t *Transport) Stop() {
	t.mu.Lock()
	if t.stopped {
		t.mu.Unlock()
		t.wg.Wait()
		return
	}
	t.stopped = true
	peers := t.peers
	inbound := t.inbound
	t.peers = map[uint64]*peer{}
	t.inbound = map[uint64]*inboundStream{}
	t.mu.Unlock()

	t.cancel()
	for _, in := range inbound {
		in.conn.Close()
	}
	for _, p := range peers {
		p.cancel()
	}
	t.wg.Wait()
	t.lg.Info("transport stopped")
}

// track registers a goroutine the transport must wait for in Stop; it
// fails once Stop has begun.
func (t *Transport) track() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.stopped {
		return false
	}
	t.wg.Add(1)
	return true
}

func (t *Transport) peer(id uint64) *peer {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.peers[id]
}

// staleIdentity runs OnStaleIdentity once.
func (t *Transport) staleIdentity(by uint64, reason string) {
	t.staleOnce.Do(func() {
		t.lg.Error("a peer refused this member's data dir", "remote-member-id", idString(by), "reason", reason)
		if t.cfg.OnStaleIdentity != nil {
			t.cfg.OnStaleIdentity(reason)
		}
	})
}

// weWereRemoved runs OnRemoved once.
func (t *Transport) weWereRemoved(by uint64) {
	t.removedOnce.Do(func() {
		t.lg.Warn("a peer says this member was removed from the cluster", "remote-member-id", idString(by))
		if t.cfg.OnRemoved != nil {
			t.cfg.OnRemoved()
		}
	})
}

func idString(id uint64) string { return fmt.Sprintf("%016x", id) }

// tlsHandshake runs the client side of TLS on a dialed peer connection,
// verifying the peer's certificate for host.
func (t *Transport) tlsHandshake(ctx context.Context, conn net.Conn, host string, timeout time.Duration) (net.Conn, error) {
	cfg := &tls.Config{}
	if t.cfg.TLS != nil {
		cfg = t.cfg.TLS.Clone()
	}
	if cfg.ServerName == "" {
		if h, _, err := net.SplitHostPort(host); err == nil {
			cfg.ServerName = h
		}
	}
	tc := tls.Client(conn, cfg)
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if err := tc.HandshakeContext(ctx); err != nil {
		return nil, err
	}
	return tc, nil
}
