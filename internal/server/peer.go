package server

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"slices"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"

	"github.com/cadrekv/cadre/internal/membership"
)

// peerRaft is the Server as the transport sees it: the raft side of the
// peer connections. A named type keeps these methods off Server's API.
type peerRaft Server

func (p *peerRaft) Process(ctx context.Context, m *raftpb.Message) error {
	return p.node.Process(ctx, m)
}

func (p *peerRaft) ReportUnreachable(id uint64) { p.node.ReportUnreachable(id) }

func (p *peerRaft) ReportSnapshot(id uint64, status raft.SnapshotStatus) {
	p.node.ReportSnapshot(id, status)
}

// ReceiveSnapshot stores a snapshot's data durably under its index before
// raft sees the message: when raft later hands the snapshot to the applier
// (or a restart finds it recorded in the WAL), the data is on disk.
func (p *peerRaft) ReceiveSnapshot(ctx context.Context, m *raftpb.Message, body io.Reader, size int64) error {
	s := (*Server)(p)
	index := m.GetSnapshot().GetMetadata().GetIndex()
	final := snapPath(s.cfg.DataDir, index)
	tmp := final + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("creating %s: %w", tmp, err)
	}
	n, err := io.Copy(newWritebackWriter(f), body)
	if err == nil && n != size {
		err = fmt.Errorf("snapshot data ended after %d of %d bytes", n, size)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, final)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("saving snapshot at index %d: %w", index, err)
	}
	s.lg.Info("received snapshot data", "from", membership.IDString(m.GetFrom()), "index", index, "bytes", n)
	return p.node.Process(ctx, m)
}

// OpenSnapshot copies a consistent view of the backend into an unlinked
// temporary file and streams from that file while the copy is still
// running: no read transaction is held open while a slow follower receives
// it (a bbolt remap waits for every reader), and the transfer does not wait
// for the whole copy (about 50 ms per 70 MB here) before it starts. The
// size is known up front. It returns the raft index and term applied in
// the copy.
func (p *peerRaft) OpenSnapshot() (io.ReadCloser, int64, uint64, uint64, error) {
	s := (*Server)(p)
	f, err := os.CreateTemp(snapDir(s.cfg.DataDir), "send-*.tmp")
	if err != nil {
		return nil, 0, 0, 0, err
	}
	// The file is unlinked at once: it lives only as long as the open
	// handle, so a crash leaves nothing behind.
	os.Remove(f.Name())
	snap, err := s.store.OpenSnapshot()
	if err != nil {
		f.Close()
		return nil, 0, 0, 0, err
	}
	sr := newSpoolReader(f)
	go func() {
		_, err := snap.WriteTo(sr.writer())
		snap.Close()
		if err != nil {
			err = fmt.Errorf("copying backend for a snapshot: %w", err)
		}
		sr.finish(err)
	}()
	return sr, snap.Size, snap.Index, snap.Term, nil
}

// addPeer tells the transport about a member (idempotent).
func (s *Server) addPeer(m *membership.Member) {
	if m.ID == s.id {
		return
	}
	s.peersMu.Lock()
	defer s.peersMu.Unlock()
	if old, ok := s.peers[m.ID]; ok {
		// Re-applying a known member (log replay) must not drop a live
		// stream: only a real URL change re-dials.
		if !slices.Equal(old, m.PeerURLs) {
			s.peers[m.ID] = slices.Clone(m.PeerURLs)
			s.tr.UpdatePeer(m.ID, m.PeerURLs)
		}
		return
	}
	s.peers[m.ID] = slices.Clone(m.PeerURLs)
	s.tr.AddPeer(m.ID, m.PeerURLs)
}

// peersNotIn lists the transport's peers that are not in ms.
func (s *Server) peersNotIn(ms []*membership.Member) []uint64 {
	keep := map[uint64]bool{}
	for _, m := range ms {
		keep[m.ID] = true
	}
	s.peersMu.Lock()
	defer s.peersMu.Unlock()
	var out []uint64
	for id := range s.peers {
		if !keep[id] {
			out = append(out, id)
		}
	}
	return out
}

// peerRemoved is the transport's judge of a sender: a removed member is
// refused, except one raft still counts while it leaves a joint
// configuration (replace).
func (s *Server) peerRemoved(id uint64) bool {
	return s.cluster.IsRemoved(id) && !s.node.Outgoing(id)
}

func (s *Server) removePeer(id uint64) {
	s.peersMu.Lock()
	defer s.peersMu.Unlock()
	if _, ok := s.peers[id]; ok {
		delete(s.peers, id)
		s.tr.RemovePeer(id)
	}
}

// registerPeerHandlers adds the member-facing HTTP API next to the raft
// transport on the peer port.
func (s *Server) registerPeerHandlers(mux *http.ServeMux) {
	mux.HandleFunc("GET /cadre/members", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("X-Cadre-Cluster-ID", membership.IDString(s.ClusterID()))
		_ = json.NewEncoder(w).Encode(s.cluster.Members())
	})
	s.registerForwardHandlers(mux)
	s.registerJoinHandlers(mux)
	s.registerHashHandler(mux)
	s.registerHandoffHandler(mux)
}

func urlStrings(us []url.URL) []string {
	out := make([]string, len(us))
	for i := range us {
		out[i] = us[i].String()
	}
	return out
}
