package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/cadrekv/cadre/internal/membership"
	"github.com/cadrekv/cadre/internal/storage/mvcc"
)

// ErrCorrupt means this member's data disagrees with its peers'.
var ErrCorrupt = errors.New("data corruption detected")

type hashJSON struct {
	Hash      uint32 `json:"hash"`
	Revision  int64  `json:"revision"`
	Compacted int64  `json:"compacted"`
}

// registerHashHandler serves this member's HashKV to its peers.
func (s *Server) registerHashHandler(mux *http.ServeMux) {
	mux.HandleFunc("GET /cadre/hashkv", func(w http.ResponseWriter, r *http.Request) {
		rev, _ := strconv.ParseInt(r.URL.Query().Get("rev"), 10, 64)
		h, hrev, comp, err := s.store.HashKV(rev)
		if err != nil {
			code := http.StatusInternalServerError
			if errors.Is(err, mvcc.ErrFutureRev) || errors.Is(err, mvcc.ErrCompacted) {
				code = http.StatusConflict
			}
			http.Error(w, err.Error(), code)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(hashJSON{h, hrev, comp})
	})
}

// peerHash asks the member at peerURL for its HashKV at rev; ok is false
// when it cannot answer (unreachable, behind, compacted past rev).
func (s *Server) peerHash(peerURL string, rev int64) (hashJSON, bool) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(peerURL, "/")+"/cadre/hashkv?rev="+strconv.FormatInt(rev, 10), nil)
	if err != nil {
		return hashJSON{}, false
	}
	resp, err := s.peerHTTP(2 * time.Second).Do(req)
	if err != nil {
		return hashJSON{}, false
	}
	defer resp.Body.Close()
	var h hashJSON
	ok := resp.StatusCode == http.StatusOK && json.NewDecoder(resp.Body).Decode(&h) == nil
	return h, ok
}

// checkCorruption compares this member's key history with every reachable
// peer's at the same revision before the member serves clients. A peer
// that is behind or compacted past that revision is skipped; one that
// disagrees stops this member.
func (s *Server) checkCorruption() error {
	h, rev, comp, err := s.store.HashKV(0)
	if err != nil {
		return fmt.Errorf("hashing local data: %w", err)
	}
	for _, m := range s.cluster.Members() {
		if m.ID == s.id || len(m.PeerURLs) == 0 {
			continue
		}
		peer, ok := s.peerHash(m.PeerURLs[0], rev)
		if !ok || peer.Compacted != comp {
			continue // unreachable, behind, compacted differently, or unreadable
		}
		if peer.Hash != h {
			return fmt.Errorf("%w: at revision %d this member's key history hashes to %08x but member %s (%s) has %08x; this member's data dir %s is damaged: wipe it and re-add the member (member remove, then member add), or restore it from a snapshot",
				ErrCorrupt, rev, h, m.Name, membership.IDString(m.ID), peer.Hash, s.cfg.DataDir)
		}
		s.lg.Info("initial corruption check passed", "peer", membership.IDString(m.ID), "revision", rev)
	}
	return nil
}
