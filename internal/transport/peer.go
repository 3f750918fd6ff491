package transport

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cadrekv/cadre/internal/netutil"
	"go.etcd.io/raft/v3/raftpb"
)

const (
	queueSize    = 4096            // messages buffered per peer before Send drops
	maxBatch     = 512             // frames written per flush under sustained load
	writeTimeout = 5 * time.Second // one frame; a peer that stops reading is dropped
	repeatLogGap = 30 * time.Second
)

// Redial backoff after a failed dial or a lost stream (variables so a test
// can make it longer than it waits).
var (
	backoffMin = 50 * time.Millisecond
	backoffMax = time.Second
)

// Errors from dialing a peer.
var (
	// ErrRemoved means the peer answered 410: this member was removed.
	ErrRemoved = errors.New("transport: this member was removed from the cluster")
	// ErrStaleIdentity means the peer answered 409: the cluster knows this
	// member ID with another data dir.
	ErrStaleIdentity = errors.New("transport: the cluster knows this member with another data dir")
	// ErrIDMismatch means the peer answered 412: wrong cluster or member ID.
	ErrIDMismatch = errors.New("transport: cluster or member ID mismatch")
	// ErrHandshake is any other failed stream handshake.
	ErrHandshake = errors.New("transport: stream handshake failed")
)

var errRedial = errors.New("peer URLs changed")

// peer owns the outbound stream to one remote member.
type peer struct {
	t      *Transport
	id     uint64
	queue  chan *raftpb.Message
	ctx    context.Context
	cancel context.CancelFunc
	redial chan struct{} // signalled (buffered 1) when the URLs change
	// wake (buffered 1) cuts a backoff short: the peer just opened its
	// stream to us, so it is up. A member that was added and then started
	// would otherwise wait out our backoff (up to a second) before it
	// hears from the leader.
	wake chan struct{}

	activeSince atomic.Int64 // unix nanos of the current connection, 0 if none
	gone        atomic.Bool  // the peer answered 410
	lastDropLog atomic.Int64 // unix nanos; rate-limits queue-full warnings

	mu   sync.Mutex
	urls []string
	next int // index in urls to dial next

	// Used by the writer goroutine only.
	lastErr    string
	lastErrLog time.Time
}

func newPeer(t *Transport, id uint64, urls []string) *peer {
	ctx, cancel := context.WithCancel(t.ctx)
	return &peer{
		t:      t,
		id:     id,
		queue:  make(chan *raftpb.Message, queueSize),
		ctx:    ctx,
		cancel: cancel,
		redial: make(chan struct{}, 1),
		wake:   make(chan struct{}, 1),
		urls:   append([]string(nil), urls...),
	}
}

func (p *peer) setURLs(urls []string) {
	p.mu.Lock()
	p.urls = append([]string(nil), urls...)
	p.next = 0
	p.mu.Unlock()
	select {
	case p.redial <- struct{}{}:
	default:
	}
}

// url returns the URL to use now; rotate moves on after a failure.
func (p *peer) url() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.urls) == 0 {
		return ""
	}
	return p.urls[p.next%len(p.urls)]
}

func (p *peer) rotate() {
	p.mu.Lock()
	p.next++
	p.mu.Unlock()
}

// run dials, streams, and re-dials with backoff until the peer is removed,
// the transport stops, or the peer tells us we were removed.
func (p *peer) run() {
	lg := p.t.lg.With("remote-member-id", idString(p.id))
	backoff := backoffMin
	for p.ctx.Err() == nil {
		u := p.url()
		conn, br, err := p.dial(u)
		if err != nil {
			if p.ctx.Err() != nil {
				return
			}
			if errors.Is(err, ErrStaleIdentity) {
				p.t.staleIdentity(p.id, strings.TrimPrefix(err.Error(), ErrStaleIdentity.Error()+": "))
			}
			if errors.Is(err, ErrRemoved) {
				p.gone.Store(true)
				p.drain()
				lg.Warn("peer refused our stream: this member was removed; no longer dialing it", "peer-url", u)
				p.t.weWereRemoved(p.id)
				return
			}
			p.logFailure(lg, "cannot connect to peer", u, err)
			p.rotate()
			p.drain() // raft resends what matters once the peer is back
			p.t.cfg.Raft.ReportUnreachable(p.id)
			if !p.sleep(backoff/2 + rand.N(backoff/2+1)) {
				return
			}
			backoff = min(2*backoff, backoffMax)
			continue
		}
		p.lastErr = ""
		lg.Info("stream to peer established", "peer-url", u)
		started := time.Now()
		err = p.stream(conn, br)
		switch {
		case p.ctx.Err() != nil:
			return
		case errors.Is(err, errRedial):
			lg.Info("peer URLs changed; re-dialing")
			backoff = backoffMin
			continue
		}
		p.logFailure(lg, "lost stream to peer", u, err)
		p.t.cfg.Raft.ReportUnreachable(p.id)
		if time.Since(started) > backoffMax {
			backoff = backoffMin
			continue
		}
		// A peer that accepts and drops us at once must not make us spin.
		if !p.sleep(backoff/2 + rand.N(backoff/2+1)) {
			return
		}
		backoff = min(2*backoff, backoffMax)
	}
}

// dial connects to u and performs the upgrade handshake.
func (p *peer) dial(u string) (net.Conn, *bufio.Reader, error) {
	host, secure, err := peerHost(u)
	if err != nil {
		return nil, nil, err
	}
	timeout := p.t.cfg.DialTimeout
	d := net.Dialer{Timeout: timeout}
	network := "tcp"
	if pu, perr := url.Parse(u); perr == nil {
		network = netutil.Network(pu.Scheme)
	}
	conn, err := d.DialContext(p.ctx, network, host)
	if err != nil {
		return nil, nil, err
	}
	if secure {
		tc, err := p.t.tlsHandshake(p.ctx, conn, host, timeout)
		if err != nil {
			conn.Close()
			return nil, nil, fmt.Errorf("%w: TLS: %w", ErrHandshake, err)
		}
		conn = tc
	}
	stop := context.AfterFunc(p.ctx, func() { conn.Close() })
	fail := func(err error) (net.Conn, *bufio.Reader, error) {
		stop()
		conn.Close()
		return nil, nil, err
	}
	_ = conn.SetDeadline(time.Now().Add(timeout))
	inc := ""
	if p.t.cfg.Incarnation != 0 {
		inc = fmt.Sprintf("%s: %016x\r\n", hdrIncarnation, p.t.cfg.Incarnation)
	}
	req := fmt.Sprintf("GET %s HTTP/1.1\r\nHost: %s\r\nConnection: Upgrade\r\nUpgrade: %s\r\n"+
		"%s: %016x\r\n%s: %016x\r\n%s: %016x\r\n%s\r\n",
		streamPath, host, upgradeProto,
		hdrClusterID, p.t.clusterID.Load(), hdrFrom, p.t.cfg.LocalID, hdrTo, p.id, inc)
	if _, err := io.WriteString(conn, req); err != nil {
		return fail(fmt.Errorf("%w: write request: %w", ErrHandshake, err))
	}
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		return fail(fmt.Errorf("%w: read response: %w", ErrHandshake, err))
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
		resp.Body.Close()
		text := strings.TrimSpace(string(msg))
		switch resp.StatusCode {
		case http.StatusGone:
			return fail(fmt.Errorf("%w: %s", ErrRemoved, text))
		case http.StatusPreconditionFailed:
			return fail(fmt.Errorf("%w: %s", ErrIDMismatch, text))
		case http.StatusConflict:
			return fail(fmt.Errorf("%w: %s", ErrStaleIdentity, text))
		}
		return fail(fmt.Errorf("%w: %s: %s", ErrHandshake, resp.Status, text))
	}
	if !strings.EqualFold(resp.Header.Get("Upgrade"), upgradeProto) {
		return fail(fmt.Errorf("%w: peer upgraded to %q, want %q", ErrHandshake, resp.Header.Get("Upgrade"), upgradeProto))
	}
	if v := resp.Header.Get(hdrIncarnation); v != "" && p.t.cfg.CheckIncarnation != nil {
		// Sending to a member whose data dir is not the one it had would
		// tell it of commits its log lacks.
		inc, err := strconv.ParseUint(v, 16, 64)
		if err != nil {
			return fail(fmt.Errorf("%w: bad %s %q in the answer", ErrHandshake, hdrIncarnation, v))
		}
		if err := p.t.cfg.CheckIncarnation(p.id, inc); err != nil {
			return fail(fmt.Errorf("%w: not sending to it: %w", ErrHandshake, err))
		}
	}
	if !stop() {
		conn.Close() // the peer was stopped during the handshake
		return nil, nil, p.ctx.Err()
	}
	_ = conn.SetDeadline(time.Time{})
	return conn, br, nil
}

// stream writes queued messages to conn until it fails, the URLs change or
// the peer stops. Under load it writes up to maxBatch frames per flush;
// when idle each message is flushed at once.
func (p *peer) stream(conn net.Conn, br *bufio.Reader) error {
	p.activeSince.Store(time.Now().UnixNano())
	defer p.activeSince.Store(0)
	stop := context.AfterFunc(p.ctx, func() { conn.Close() })
	defer stop()

	// The receiver never writes after 101; a read returning means it
	// closed the connection, which we want to notice even when idle.
	closed := make(chan struct{})
	go func() {
		defer close(closed)
		_, _ = io.Copy(io.Discard, br)
	}()
	defer func() {
		conn.Close()
		<-closed
	}()

	bw := bufio.NewWriterSize(conn, 64<<10)
	var buf []byte
	write := func(m *raftpb.Message) error {
		var err error
		buf, err = appendFrame(buf[:0], m)
		if err != nil {
			p.t.lg.Error("dropped unencodable message", "remote-member-id", idString(p.id), "type", m.GetType().String(), "error", err.Error())
			return nil
		}
		_ = conn.SetWriteDeadline(time.Now().Add(writeTimeout))
		_, err = bw.Write(buf)
		return err
	}
	for {
		select {
		case <-p.ctx.Done():
			return p.ctx.Err()
		case <-p.redial:
			return errRedial
		case <-closed:
			return errors.New("peer closed the stream")
		case m := <-p.queue:
			if err := write(m); err != nil {
				return err
			}
		batch:
			for n := 1; n < maxBatch; n++ {
				select {
				case m = <-p.queue:
					if err := write(m); err != nil {
						return err
					}
				default:
					break batch
				}
			}
			_ = conn.SetWriteDeadline(time.Now().Add(writeTimeout))
			if err := bw.Flush(); err != nil {
				return err
			}
		}
	}
}

// sleep waits d, cut short by a URL change or by the peer's own stream
// arriving; false if the peer stopped.
func (p *peer) sleep(d time.Duration) bool {
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-p.ctx.Done():
		return false
	case <-p.redial:
		return true
	case <-p.wake:
		return true
	case <-timer.C:
		return true
	}
}

// peerIsUp is called when the peer opens its stream to us.
func (p *peer) peerIsUp() {
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// drain drops everything queued.
func (p *peer) drain() {
	for {
		select {
		case <-p.queue:
		default:
			return
		}
	}
}

// logFailure warns about err unless the same error was logged recently, so
// a peer that is down for an hour does not flood the log.
func (p *peer) logFailure(lg *slog.Logger, msg, u string, err error) {
	now := time.Now()
	if err.Error() == p.lastErr && now.Sub(p.lastErrLog) < repeatLogGap {
		return
	}
	p.lastErr, p.lastErrLog = err.Error(), now
	lg.Warn(msg, "peer-url", u, "error", err.Error())
}

func (p *peer) logDrop(m *raftpb.Message) {
	now := time.Now().UnixNano()
	last := p.lastDropLog.Load()
	if now-last < int64(time.Second) || !p.lastDropLog.CompareAndSwap(last, now) {
		return
	}
	p.t.lg.Warn("dropped message: peer send queue is full", "remote-member-id", idString(p.id),
		"type", m.GetType().String(), "queue-size", queueSize)
}

// peerHost validates a peer URL and returns its host:port and whether it
// is https.
func peerHost(u string) (string, bool, error) {
	pu, err := url.Parse(u)
	if err != nil {
		return "", false, fmt.Errorf("transport: bad peer URL %q: %w", u, err)
	}
	switch pu.Scheme {
	case "http", "https", "unix", "unixs":
	default:
		pu.Host = ""
	}
	if pu.Host == "" {
		return "", false, fmt.Errorf("transport: bad peer URL %q: want http://host:port, https://host:port or unix://socket", u)
	}
	return pu.Host, netutil.IsSecure(pu.Scheme), nil
}
