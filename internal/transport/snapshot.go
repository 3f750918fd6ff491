package transport

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
)

const (
	snapIdleTimeout     = 30 * time.Second // no byte moved for this long: give up
	snapResponseTimeout = time.Minute      // after the last byte, for the receiver to store and step
	progressEvery       = 5 * time.Second
)

// ErrSnapshotSize means a snapshot body was shorter or longer than announced.
var ErrSnapshotSize = errors.New("transport: snapshot size mismatch")

// SendSnapshot streams m's metadata and size bytes of body to m.To in the
// background, closes body, and reports SnapshotFinish (receiver answered
// 2xx) or SnapshotFailure to raft.
func (t *Transport) SendSnapshot(m *raftpb.Message, body io.ReadCloser, size int64) {
	to := m.GetTo()
	p := t.peer(to)
	if p == nil || !t.track() {
		body.Close()
		t.lg.Warn("cannot send snapshot: unknown peer or transport stopped", "remote-member-id", idString(to))
		t.cfg.Raft.ReportSnapshot(to, raft.SnapshotFailure)
		return
	}
	go func() {
		defer t.wg.Done()
		status := raft.SnapshotFinish
		if err := t.sendSnapshot(p, m, body, size); err != nil {
			status = raft.SnapshotFailure
			t.lg.Warn("snapshot send failed", "remote-member-id", idString(to),
				"index", m.GetSnapshot().GetMetadata().GetIndex(), "error", err.Error())
		}
		t.cfg.Raft.ReportSnapshot(to, status)
	}()
}

func (t *Transport) sendSnapshot(p *peer, m *raftpb.Message, body io.ReadCloser, size int64) error {
	rc := &onceCloser{ReadCloser: body}
	defer rc.Close()
	u := p.url()
	if _, _, err := peerHost(u); err != nil {
		return err
	}
	hdr, err := appendFrame(nil, m)
	if err != nil {
		return err
	}
	lg := t.lg.With("remote-member-id", idString(p.id), "index", m.GetSnapshot().GetMetadata().GetIndex())
	ctx, cancel := context.WithCancel(p.ctx)
	defer cancel()

	src := &progressReader{r: &sizedSource{r: rc, left: size}, prog: newProgress(lg, "sending snapshot", size)}
	src.touch()
	st := &sendState{total: size}
	src.sent = &st.sent
	t.sendMu.Lock()
	t.sending[p.id] = st
	t.sendMu.Unlock()
	defer func() {
		t.sendMu.Lock()
		if t.sending[p.id] == st {
			delete(t.sending, p.id)
		}
		t.sendMu.Unlock()
	}()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u+snapshotPath,
		&readCloser{Reader: io.MultiReader(bytes.NewReader(hdr), src), Closer: rc})
	if err != nil {
		return fmt.Errorf("transport: snapshot request to %s: %w", u, err)
	}
	req.ContentLength = int64(len(hdr)) + size
	req.Header.Set(hdrClusterID, idString(t.clusterID.Load()))
	req.Header.Set(hdrFrom, idString(t.cfg.LocalID))
	req.Header.Set(hdrTo, idString(p.id))
	req.Header.Set(hdrSnapSize, strconv.FormatInt(size, 10))
	if t.cfg.Incarnation != 0 {
		req.Header.Set(hdrIncarnation, idString(t.cfg.Incarnation))
	}
	req.Header.Set("Content-Type", "application/octet-stream")

	// Watchdog: a receiver that stops reading would otherwise hold this
	// goroutine until TCP gives up, many minutes later.
	stopWatch := make(chan struct{})
	var watch sync.WaitGroup
	watch.Go(func() {
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		for {
			select {
			case <-stopWatch:
				return
			case <-tick.C:
				limit := snapIdleTimeout
				if src.eof.Load() {
					limit = snapResponseTimeout
				}
				if time.Since(time.Unix(0, src.last.Load())) > limit {
					lg.Warn("snapshot transfer stalled; aborting", "stalled-for", limit.String())
					cancel()
					return
				}
			}
		}
	})
	defer watch.Wait()
	defer close(stopWatch)

	src.prog.begin(u)
	resp, err := t.snapHTTP.Do(req)
	if err != nil {
		return fmt.Errorf("transport: snapshot to %s: %w", u, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
		err := fmt.Errorf("transport: peer refused snapshot: %s: %s", resp.Status, strings.TrimSpace(string(msg)))
		switch resp.StatusCode {
		case http.StatusGone:
			t.weWereRemoved(p.id)
			err = fmt.Errorf("%w: %w", ErrRemoved, err)
		case http.StatusPreconditionFailed:
			err = fmt.Errorf("%w: %w", ErrIDMismatch, err)
		}
		return err
	}
	src.prog.end()
	return nil
}

// serveSnapshot receives a snapshot: identity, metadata frame, then the
// db bytes handed to the SnapshotReceiver.
func (t *Transport) serveSnapshot(w http.ResponseWriter, r *http.Request) {
	id, ok := t.checkIdentity(w, r)
	if !ok {
		return
	}
	size, err := strconv.ParseInt(r.Header.Get(hdrSnapSize), 10, 64)
	if err != nil || size < 0 {
		http.Error(w, fmt.Sprintf("bad %s header %q: want a decimal byte count", hdrSnapSize, r.Header.Get(hdrSnapSize)), http.StatusBadRequest)
		return
	}
	if r.ContentLength < 0 {
		http.Error(w, "snapshot upload needs a Content-Length", http.StatusLengthRequired)
		return
	}
	if t.cfg.Snapshots == nil {
		http.Error(w, "this member does not accept snapshots", http.StatusInternalServerError)
		return
	}
	if !t.track() {
		http.Error(w, "transport stopped", http.StatusServiceUnavailable)
		return
	}
	defer t.wg.Done()

	ctx, cancel := context.WithCancel(t.ctx)
	defer cancel()
	stopOnDone := context.AfterFunc(r.Context(), cancel)
	defer stopOnDone()
	// Unblock body reads when the transport stops or the request dies;
	// each read also pushes the deadline forward, so a stalled sender
	// cannot hold this handler forever.
	rc := http.NewResponseController(w)
	unblock := context.AfterFunc(ctx, func() { _ = rc.SetReadDeadline(time.Now()) })
	defer unblock()
	defer func() { _ = rc.SetReadDeadline(time.Time{}) }()
	counted := &countingReader{r: &deadlineReader{ctx: ctx, r: r.Body, rc: rc}}
	br := bufio.NewReaderSize(counted, 64<<10)

	m, err := readFrame(br, nil)
	if err != nil {
		http.Error(w, "bad snapshot metadata: "+err.Error(), http.StatusBadRequest)
		return
	}
	if want := counted.n - int64(br.Buffered()) + size; r.ContentLength != want {
		http.Error(w, fmt.Sprintf("%v: Content-Length %d, want %d for %d db bytes", ErrSnapshotSize, r.ContentLength, want, size), http.StatusBadRequest)
		return
	}
	if m.GetType() != raftpb.MsgSnap || m.GetTo() != t.cfg.LocalID || m.GetFrom() != id.from || m.GetSnapshot() == nil {
		http.Error(w, fmt.Sprintf("bad snapshot message: type %s from %016x to %016x; want MsgSnap from %016x to %016x with a snapshot",
			m.GetType(), m.GetFrom(), m.GetTo(), id.from, t.cfg.LocalID), http.StatusBadRequest)
		return
	}

	lg := t.lg.With("remote-member-id", idString(id.from), "index", m.GetSnapshot().GetMetadata().GetIndex())
	prog := newProgress(lg, "receiving snapshot", size)
	prog.begin(r.RemoteAddr)
	body := &exactReader{r: br, left: size, prog: prog}
	if err := t.cfg.Snapshots.ReceiveSnapshot(ctx, m, body, size); err != nil {
		lg.Warn("snapshot receive failed", "error", err.Error())
		http.Error(w, "cannot receive snapshot: "+err.Error(), http.StatusInternalServerError)
		return
	}
	if body.left != 0 {
		err := fmt.Errorf("%w: the receiver read %d of %d bytes", ErrSnapshotSize, size-body.left, size)
		lg.Error("snapshot receive incomplete", "error", err.Error())
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	prog.end()
	// A server WriteTimeout counts from the request start; a long upload
	// must not make the answer itself fail.
	_ = rc.SetWriteDeadline(time.Now().Add(10 * time.Second))
	w.WriteHeader(http.StatusNoContent)
}

// progress logs a transfer's start, every ~10% or progressEvery, and end.
type progress struct {
	lg       *slog.Logger
	msg      string
	total    int64
	done     int64
	start    time.Time
	nextMark int64
	lastLog  time.Time
}

func newProgress(lg *slog.Logger, msg string, total int64) *progress {
	return &progress{lg: lg, msg: msg, total: total}
}

func (p *progress) begin(peer string) {
	p.start, p.lastLog = time.Now(), time.Now()
	p.nextMark = p.total / 10
	p.lg.Info(p.msg+": started", "peer", peer, "size", p.total)
}

func (p *progress) add(n int) {
	p.done += int64(n)
	if p.done >= p.total {
		return // end() logs completion
	}
	if now := time.Now(); p.done >= p.nextMark || now.Sub(p.lastLog) >= progressEvery {
		p.lastLog = now
		for p.nextMark <= p.done {
			p.nextMark += max(p.total/10, 1)
		}
		p.lg.Info(p.msg+": progress", "bytes", p.done, "total", p.total)
	}
}

func (p *progress) end() {
	p.lg.Info(p.msg+": done", "bytes", p.done, "took", time.Since(p.start).String())
}

// progressReader counts the bytes the HTTP client pulls for the watchdog.
type progressReader struct {
	r    io.Reader
	prog *progress
	sent *atomic.Int64 // optional: bytes read so far, for SnapshotProgress
	last atomic.Int64  // unix nanos of the last read that moved bytes
	eof  atomic.Bool
}

func (r *progressReader) touch() { r.last.Store(time.Now().UnixNano()) }

func (r *progressReader) Read(b []byte) (int, error) {
	n, err := r.r.Read(b)
	if n > 0 {
		r.touch()
		r.prog.add(n)
		if r.sent != nil {
			r.sent.Add(int64(n))
		}
	}
	if err == io.EOF {
		r.touch()
		r.eof.Store(true)
	}
	return n, err
}

// exactReader yields exactly left bytes; a short source is an error, not EOF.
type exactReader struct {
	r    io.Reader
	left int64
	prog *progress
}

func (e *exactReader) Read(b []byte) (int, error) {
	if e.left <= 0 {
		return 0, io.EOF
	}
	if int64(len(b)) > e.left {
		b = b[:e.left]
	}
	n, err := e.r.Read(b)
	e.left -= int64(n)
	e.prog.add(n)
	if err == io.EOF && e.left > 0 {
		return n, fmt.Errorf("%w: body ended %d bytes early", ErrSnapshotSize, e.left)
	}
	if err == io.EOF {
		err = nil // the next call returns EOF
	}
	return n, err
}

// sizedSource yields the sender's body and fails if it is not exactly
// left bytes long. It withholds the last bytes until it has seen the
// source end, so a longer-than-announced body (a truncated db on the
// receiver) never reaches the receiver complete.
type sizedSource struct {
	r    io.Reader
	left int64
}

func (s *sizedSource) Read(b []byte) (int, error) {
	if s.left <= 0 {
		return 0, io.EOF
	}
	if int64(len(b)) > s.left {
		b = b[:s.left]
	}
	n, err := s.r.Read(b)
	s.left -= int64(n)
	if s.left > 0 {
		if err == io.EOF {
			return n, fmt.Errorf("%w: body ended %d bytes early", ErrSnapshotSize, s.left)
		}
		return n, err
	}
	if err == nil {
		var probe [1]byte
		m, perr := io.ReadFull(s.r, probe[:])
		switch {
		case m > 0:
			return 0, fmt.Errorf("%w: body is longer than announced", ErrSnapshotSize)
		case perr != io.EOF:
			return 0, perr
		}
	} else if err != io.EOF {
		return 0, err
	}
	return n, nil
}

// deadlineReader pushes the connection's read deadline forward on every
// read, so only a stalled sender times out, not a long transfer.
type deadlineReader struct {
	ctx context.Context
	r   io.Reader
	rc  *http.ResponseController
}

func (d *deadlineReader) Read(b []byte) (int, error) {
	_ = d.rc.SetReadDeadline(time.Now().Add(snapIdleTimeout))
	// Checked after moving the deadline so a concurrent cancel (which
	// sets the deadline to now) is never overridden unnoticed.
	if err := d.ctx.Err(); err != nil {
		return 0, err
	}
	return d.r.Read(b)
}

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(b []byte) (int, error) {
	n, err := c.r.Read(b)
	c.n += int64(n)
	return n, err
}

type readCloser struct {
	io.Reader
	io.Closer
}

// onceCloser lets both the HTTP client and us close the snapshot body.
type onceCloser struct {
	io.ReadCloser
	once sync.Once
	err  error
}

func (c *onceCloser) Close() error {
	c.once.Do(func() { c.err = c.ReadCloser.Close() })
	return c.err
}

// sendState is an outgoing snapshot's progress, readable while it runs.
type sendState struct {
	sent  atomic.Int64
	total int64
}

// SnapshotProgress reports how much of the snapshot being sent to peer id
// has gone out (0, 0 when none is being sent).
func (t *Transport) SnapshotProgress(id uint64) (sent, total int64) {
	t.sendMu.Lock()
	defer t.sendMu.Unlock()
	if st, ok := t.sending[id]; ok {
		return st.sent.Load(), st.total
	}
	return 0, 0
}
