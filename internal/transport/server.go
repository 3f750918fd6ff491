package transport

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"go.etcd.io/raft/v3/raftpb"
)

const (
	streamPath   = "/cadre/peer/v1/stream"
	snapshotPath = "/cadre/peer/v1/snapshot"
	upgradeProto = "cadre-raft/1"

	hdrClusterID = "X-Cadre-Cluster-ID"
	hdrFrom      = "X-Cadre-From"
	hdrTo        = "X-Cadre-To"
	hdrSnapSize  = "X-Cadre-Snapshot-Size"
	// hdrIncarnation is the sender's data dir incarnation (16 hex; absent
	// from members whose data dir has none).
	hdrIncarnation = "X-Cadre-Incarnation"

	removedText = "the member has been permanently removed from the cluster"
)

// inboundStream is a live stream a peer opened to us.
type inboundStream struct {
	conn  net.Conn
	since time.Time
}

func (t *Transport) serveHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case streamPath:
		if r.Method != http.MethodGet {
			w.Header().Set("Allow", http.MethodGet)
			http.Error(w, "method not allowed: the stream endpoint wants GET", http.StatusMethodNotAllowed)
			return
		}
		t.serveStream(w, r)
	case snapshotPath:
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", http.MethodPost)
			http.Error(w, "method not allowed: the snapshot endpoint wants POST", http.StatusMethodNotAllowed)
			return
		}
		t.serveSnapshot(w, r)
	default:
		http.NotFound(w, r)
	}
}

// identity is who a request says it comes from and goes to.
type identity struct{ cluster, from, to uint64 }

// checkIdentity parses and validates the identity headers. On refusal it
// writes the answer, logs both sides' IDs and returns false.
func (t *Transport) checkIdentity(w http.ResponseWriter, r *http.Request) (identity, bool) {
	var id identity
	for _, h := range []struct {
		name string
		dst  *uint64
	}{{hdrClusterID, &id.cluster}, {hdrFrom, &id.from}, {hdrTo, &id.to}} {
		v, err := strconv.ParseUint(r.Header.Get(h.name), 16, 64)
		if err != nil {
			http.Error(w, fmt.Sprintf("bad %s header %q: want a 16-digit hex ID", h.name, r.Header.Get(h.name)), http.StatusBadRequest)
			return id, false
		}
		*h.dst = v
	}
	lg := t.lg.With("remote-member-id", idString(id.from), "remote-addr", r.RemoteAddr)
	local := t.clusterID.Load()
	if local != 0 && id.cluster != local {
		msg := fmt.Sprintf("cluster ID mismatch: this member (%016x) is in cluster %016x, the request is for cluster %016x; check --initial-cluster and the data dir",
			t.cfg.LocalID, local, id.cluster)
		lg.Warn("refused peer request: cluster ID mismatch", "local-cluster-id", idString(local), "remote-cluster-id", idString(id.cluster))
		http.Error(w, msg, http.StatusPreconditionFailed)
		return id, false
	}
	if id.to != t.cfg.LocalID {
		msg := fmt.Sprintf("member ID mismatch: this member is %016x, the request is for member %016x; check the peer URLs",
			t.cfg.LocalID, id.to)
		lg.Warn("refused peer request: member ID mismatch", "requested-member-id", idString(id.to))
		http.Error(w, msg, http.StatusPreconditionFailed)
		return id, false
	}
	if t.cfg.IsRemoved != nil && t.cfg.IsRemoved(id.from) {
		lg.Warn("refused peer request: the sender was removed from the cluster")
		http.Error(w, removedText, http.StatusGone)
		return id, false
	}
	if v := r.Header.Get(hdrIncarnation); v != "" && t.cfg.CheckIncarnation != nil {
		inc, err := strconv.ParseUint(v, 16, 64)
		if err != nil {
			http.Error(w, fmt.Sprintf("bad %s header %q: want 16 hex digits", hdrIncarnation, v), http.StatusBadRequest)
			return id, false
		}
		if err := t.cfg.CheckIncarnation(id.from, inc); err != nil {
			lg.Warn("refused peer request: the sender's data dir is not the one the cluster knows", "incarnation", idString(inc), "error", err.Error())
			http.Error(w, err.Error(), http.StatusConflict)
			return id, false
		}
	}
	return id, true
}

// serveStream upgrades the connection and steps every received message.
func (t *Transport) serveStream(w http.ResponseWriter, r *http.Request) {
	if !strings.EqualFold(r.Header.Get("Upgrade"), upgradeProto) {
		w.Header().Set("Upgrade", upgradeProto)
		http.Error(w, fmt.Sprintf("upgrade required: want Upgrade: %s", upgradeProto), http.StatusUpgradeRequired)
		return
	}
	id, ok := t.checkIdentity(w, r)
	if !ok {
		return
	}
	if !t.track() {
		http.Error(w, "transport stopped", http.StatusServiceUnavailable)
		return
	}
	defer t.wg.Done()
	conn, rw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		t.lg.Error("cannot take over peer stream connection", "remote-member-id", idString(id.from), "error", err.Error())
		http.Error(w, "cannot upgrade this connection", http.StatusInternalServerError)
		return
	}
	defer conn.Close()
	// The server may have set deadlines for reading the request; a stream
	// is long-lived and may idle (TCP keepalive notices dead peers).
	_ = conn.SetDeadline(time.Now().Add(t.cfg.DialTimeout))
	// The answer names our data dir too, so the dialer can refuse to send
	// to a member ID that came back with another one.
	inc := ""
	if t.cfg.Incarnation != 0 {
		inc = hdrIncarnation + ": " + idString(t.cfg.Incarnation) + "\r\n"
	}
	if _, err := io.WriteString(rw, "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: "+upgradeProto+"\r\n"+inc+"\r\n"); err != nil {
		return
	}
	if err := rw.Flush(); err != nil {
		return
	}
	_ = conn.SetDeadline(time.Time{})

	if !t.attachInbound(id.from, conn) {
		return
	}
	defer t.detachInbound(id.from, conn)
	lg := t.lg.With("remote-member-id", idString(id.from))
	lg.Info("stream from peer accepted", "remote-addr", r.RemoteAddr)
	err = t.readStream(rw.Reader, id.from)
	switch {
	case t.ctx.Err() != nil, errors.Is(err, io.EOF), errors.Is(err, net.ErrClosed):
		lg.Info("stream from peer closed")
	default:
		lg.Warn("stream from peer failed", "error", err.Error())
	}
}

// readStream steps frames from r in order until an error.
func (t *Transport) readStream(r *bufio.Reader, from uint64) error {
	var scratch []byte // one frame body at a time: Unmarshal copies what it keeps
	for {
		m, err := readFrame(r, &scratch)
		if err != nil {
			return err
		}
		if m.GetTo() != t.cfg.LocalID || m.GetType() == raftpb.MsgSnap {
			// MsgSnap without its data would make raft install an empty
			// snapshot; it only ever arrives through the snapshot endpoint.
			t.lg.Warn("dropped unexpected message on peer stream", "remote-member-id", idString(from),
				"type", m.GetType().String(), "to", idString(m.GetTo()))
			continue
		}
		if err := t.cfg.Raft.Process(t.ctx, m); err != nil {
			if t.ctx.Err() != nil {
				return t.ctx.Err()
			}
			t.lg.Debug("raft refused a peer message", "remote-member-id", idString(from),
				"type", m.GetType().String(), "error", err.Error())
		}
	}
}

// attachInbound records conn as the stream from id, closing an older one:
// the peer only keeps one, so an older one is half-dead.
func (t *Transport) attachInbound(from uint64, conn net.Conn) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.stopped {
		return false
	}
	if old := t.inbound[from]; old != nil {
		old.conn.Close()
	}
	t.inbound[from] = &inboundStream{conn: conn, since: time.Now()}
	if p := t.peers[from]; p != nil {
		p.peerIsUp()
	}
	return true
}

func (t *Transport) detachInbound(from uint64, conn net.Conn) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if in := t.inbound[from]; in != nil && in.conn == conn {
		delete(t.inbound, from)
	}
}
