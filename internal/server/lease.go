package server

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strings"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"

	"github.com/cadrekv/cadre/internal/cerr"
	"github.com/cadrekv/cadre/internal/lease"
	"github.com/cadrekv/cadre/internal/membership"
)

// Leases: grants, revocations and checkpoints go through raft and are
// applied on every member; only the leader tracks expiry and keep-alives.
// The lessor knows each lease's keys (kept by the apply path).

// minLeaseTTL is etcd's rule: a lease must outlive a leader election, so a
// granted TTL is at least 1.5 election timeouts, in whole seconds.
func minLeaseTTL(election time.Duration) int64 {
	return int64(math.Ceil(1.5 * election.Seconds()))
}

// LeaseGrant grants a lease through raft; an ID of 0 gets a fresh one.
func (s *Server) LeaseGrant(ctx context.Context, r *pb.LeaseGrantRequest) (*pb.LeaseGrantResponse, error) {
	if r.ID == 0 {
		r.ID = s.newLeaseID()
	}
	// The minimum is applied here, before proposing, so the TTL every
	// member stores does not depend on its own election timeout.
	r.TTL = max(r.TTL, minLeaseTTL(s.cfg.ElectionTimeout))
	resp, err := s.propose(ctx, &pb.InternalRaftRequest{LeaseGrant: r})
	if err != nil {
		return nil, err
	}
	return resp.(*pb.LeaseGrantResponse), nil
}

// newLeaseID picks a random positive ID not in use (IDs must be chosen
// before proposing so that every member applies the same one).
func (s *Server) newLeaseID() int64 {
	for {
		var b [8]byte
		_, _ = rand.Read(b[:])
		id := int64(binary.BigEndian.Uint64(b[:]) & math.MaxInt64)
		if id != 0 && !s.lessor.Exists(id) {
			return id
		}
	}
}

// LeaseRevoke revokes a lease (and deletes its keys) through raft.
func (s *Server) LeaseRevoke(ctx context.Context, id int64) (*pb.LeaseRevokeResponse, error) {
	resp, err := s.propose(ctx, &pb.InternalRaftRequest{LeaseRevoke: &pb.LeaseRevokeRequest{ID: id}})
	if err != nil {
		return nil, err
	}
	return resp.(*pb.LeaseRevokeResponse), nil
}

// LeaseRenew is one keep-alive: the leader renews; others forward to it.
// Without a leader, or while a new leader's lessor is not yet primary, it
// retries until one answers (bounded by the request timeout), as etcd
// does: failing at once would let a client's lease lapse across a leader
// change it could have survived (the client gives up once a whole TTL
// passes without an answer).
func (s *Server) LeaseRenew(ctx context.Context, id int64) (int64, error) {
	ctx, cancel := context.WithTimeout(ctx, s.reqTimout)
	defer cancel()
	for {
		ttl, err := s.leaseRenewOnce(ctx, id)
		if err == nil || errors.Is(err, lease.ErrLeaseNotFound) {
			return ttl, err
		}
		select {
		case <-ctx.Done():
			return ttl, err
		case <-s.stopping:
			return ttl, cerr.ErrStopped
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func (s *Server) leaseRenewOnce(ctx context.Context, id int64) (int64, error) {
	if s.node.IsLeader() {
		if !s.lessor.IsPrimary() {
			return -1, lease.ErrNotPrimary // promoted by the lease loop shortly
		}
		return s.lessor.Renew(id)
	}
	var out struct {
		TTL int64 `json:"ttl"`
	}
	if err := s.forward(ctx, "POST", fmt.Sprintf("/cadre/leases/%016x/renew", uint64(id)), struct{}{}, &out); err != nil {
		return 0, err
	}
	return out.TTL, nil
}

// LeaseTimeToLive reports a lease's remaining time, as the leader sees it.
func (s *Server) LeaseTimeToLive(ctx context.Context, id int64, keys bool) (*pb.LeaseTimeToLiveResponse, error) {
	if !s.node.IsLeader() {
		var out leaseTTLJSON
		if err := s.forward(ctx, "POST", fmt.Sprintf("/cadre/leases/%016x/ttl?keys=%v", uint64(id), keys), struct{}{}, &out); err != nil {
			return nil, err
		}
		return &pb.LeaseTimeToLiveResponse{ID: out.ID, TTL: out.TTL, GrantedTTL: out.GrantedTTL, Keys: out.Keys}, nil
	}
	info, ok := s.lessor.Lookup(id)
	if !ok {
		// etcd answers a missing lease with TTL -1 rather than an error.
		return &pb.LeaseTimeToLiveResponse{ID: id, TTL: -1}, nil
	}
	resp := &pb.LeaseTimeToLiveResponse{ID: id, TTL: info.RemainingTTL, GrantedTTL: info.GrantedTTL}
	if keys {
		resp.Keys = s.lessor.Keys(id)
	}
	return resp, nil
}

// LeaseLeases lists the leases.
func (s *Server) LeaseLeases(ctx context.Context) (*pb.LeaseLeasesResponse, error) {
	resp := &pb.LeaseLeasesResponse{}
	for _, id := range s.lessor.IDs() {
		resp.Leases = append(resp.Leases, &pb.LeaseStatus{ID: id})
	}
	return resp, nil
}

// leaseLoop is the leader's lease duty: revoke expired leases and
// checkpoint remaining TTLs through raft, so a new leader neither extends
// nor cuts short a lease.
func (s *Server) leaseLoop() {
	t := time.NewTicker(500 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-s.stopping:
			return
		case <-t.C:
		}
		isLeader := s.node.IsLeader()
		s.lessorFollows(isLeader)
		if !isLeader {
			continue
		}
		for _, id := range s.lessor.Expired(64) {
			go func(id int64) {
				ctx, cancel := context.WithTimeout(context.Background(), s.reqTimout)
				defer cancel()
				if _, err := s.LeaseRevoke(ctx, id); err != nil && !errors.Is(err, lease.ErrLeaseNotFound) {
					s.lg.Warn("revoking expired lease failed; will retry", "lease", fmt.Sprintf("%016x", uint64(id)), "error", err.Error())
				}
			}(id)
		}
		if cps := s.lessor.Checkpoints(256); len(cps) > 0 {
			req := &pb.LeaseCheckpointRequest{}
			for _, c := range cps {
				req.Checkpoints = append(req.Checkpoints, &pb.LeaseCheckpoint{ID: c.ID, Remaining_TTL: c.RemainingTTL})
			}
			ctx, cancel := context.WithTimeout(context.Background(), s.reqTimout)
			_, err := s.propose(ctx, &pb.InternalRaftRequest{LeaseCheckpoint: req})
			cancel()
			if err != nil && !errors.Is(err, cerr.ErrStopped) {
				s.lg.Debug("lease checkpoint failed", "error", err.Error())
			}
		}
	}
}

// lessorFollows makes the lessor primary exactly while this member leads.
// The leader-change event calls it at once; the lease loop again on every
// tick, compared with the lessor's own state, so a recovery (which leaves
// the lessor non-primary) is promoted again.
func (s *Server) lessorFollows(isLeader bool) {
	// One at a time: a second Promote would reset expiries renewed since.
	s.lessorMu.Lock()
	defer s.lessorMu.Unlock()
	switch {
	case isLeader && !s.lessor.IsPrimary():
		s.lessor.Promote(s.cfg.ElectionTimeout)
	case !isLeader && s.lessor.IsPrimary():
		s.lessor.Demote()
	}
}

// leaseTTLJSON carries a time-to-live answer over the forwarding hop.
type leaseTTLJSON struct {
	ID         int64    `json:"id"`
	TTL        int64    `json:"ttl"`
	GrantedTTL int64    `json:"grantedTTL"`
	Keys       [][]byte `json:"keys,omitempty"`
}

func (s *Server) registerLeaseHandlers(mux *http.ServeMux) {
	leaseID := func(r *http.Request) (int64, error) {
		id, err := membership.ParseID(r.PathValue("id"))
		return int64(id), err
	}
	mux.HandleFunc("POST /cadre/leases/{id}/renew", func(w http.ResponseWriter, r *http.Request) {
		id, err := leaseID(r)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		if !s.node.IsLeader() {
			writeForwardError(w, cerr.ErrNotLeader)
			return
		}
		ttl, err := s.leaseRenewOnce(r.Context(), id) // the follower retries
		if err != nil {
			writeForwardError(w, err)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(struct {
			TTL int64 `json:"ttl"`
		}{ttl})
	})
	mux.HandleFunc("POST /cadre/leases/{id}/ttl", func(w http.ResponseWriter, r *http.Request) {
		id, err := leaseID(r)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		if !s.node.IsLeader() {
			writeForwardError(w, cerr.ErrNotLeader)
			return
		}
		resp, err := s.LeaseTimeToLive(r.Context(), id, strings.EqualFold(r.URL.Query().Get("keys"), "true"))
		if err != nil {
			writeForwardError(w, err)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(leaseTTLJSON{resp.ID, resp.TTL, resp.GrantedTTL, resp.Keys})
	})
}
