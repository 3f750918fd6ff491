// Package server runs one Cadre member: it bootstraps storage and raft in
// stages, applies committed entries to the MVCC store and the membership,
// and offers the operations the API layer serves. It does not know gRPC.
package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cadrekv/cadre/internal/apply"
	"github.com/cadrekv/cadre/internal/auth"
	"github.com/cadrekv/cadre/internal/config"
	"github.com/cadrekv/cadre/internal/lease"
	"github.com/cadrekv/cadre/internal/membership"
	"github.com/cadrekv/cadre/internal/metrics"
	"github.com/cadrekv/cadre/internal/raftnode"
	"github.com/cadrekv/cadre/internal/storage/mvcc"
	"github.com/cadrekv/cadre/internal/storage/wal"
	"github.com/cadrekv/cadre/internal/transport"
	"github.com/cadrekv/cadre/internal/wait"
)

// Version is the etcd API version Cadre implements; clients and tools
// that check the server version see a 3.7 server.
const Version = "3.7.3"

// ClusterVersion is reported as etcd's cluster version.
const ClusterVersion = "3.7.0"

// CadreVersion is Cadre's own release.
const CadreVersion = "0.1.0"

// Server is one running member.
type Server struct {
	cfg     *config.Config
	lg      *slog.Logger
	metrics *metrics.Metrics

	id uint64
	// incarnation identifies this data dir (schema.WALMetadata); 0 for a
	// data dir created before Cadre recorded one.
	incarnation uint64
	// refused are the membership changes this member refused (audit.go).
	refused   refusals
	clusterID atomic.Uint64
	cluster   *membership.Cluster

	wal      *wal.WAL
	store    *mvcc.Store
	lessor   *lease.Lessor
	lessorMu sync.Mutex // serializes lessorFollows
	alarms   *apply.Alarms
	applier  *apply.Applier // the state machine: every committed entry goes through it
	auth     *auth.Store
	tokens   *auth.Tokens
	jwt      *auth.JWT // --auth-token jwt: tokens are signed, not replicated
	node     *raftnode.Node
	tr       *transport.Transport

	peerSrv   *http.Server
	peerLns   []net.Listener
	reqs      *wait.Registry
	reqID     atomic.Uint64
	reqTimout time.Duration

	readyc    chan struct{} // closed once this member's attributes are published
	applyDone chan struct{} // closed when the apply loop has exited
	stopping  chan struct{}
	done      chan struct{}
	stopOnce  sync.Once
	fatalOnce sync.Once
	err       error // why the member stopped (nil for a clean stop)

	confMu sync.Mutex // one membership change at a time (raft allows one pending)

	peerClient *http.Client // forwards membership requests to the leader
	joined     bool         // first start after `cadre --join` added this member
	peerTLS    PeerTLS
	// peerTransport is shared by every peer HTTP call (peerHTTP).
	peerTransport     *http.Transport
	peerTransportOnce sync.Once
	joinPeers         []*membership.Member // a joining member's peers, before the log arrives

	peersMu sync.Mutex
	peers   map[uint64][]string // peers known to the transport, with their URLs
}

// ID returns this member's ID.
func (s *Server) ID() uint64 { return s.id }

// ClusterID returns the cluster ID.
func (s *Server) ClusterID() uint64 { return s.clusterID.Load() }

// Logger returns the member's logger (with member and cluster IDs).
func (s *Server) Logger() *slog.Logger { return s.lg }

// Metrics returns the member's metrics.
func (s *Server) Metrics() *metrics.Metrics { return s.metrics }

// IsReady reports whether the member has published itself.
func (s *Server) IsReady() bool {
	select {
	case <-s.readyc:
		return true
	default:
		return false
	}
}

// Ready is closed once the member published itself and may serve clients.
func (s *Server) Ready() <-chan struct{} { return s.readyc }

// Done is closed once the member has stopped; Err then says why.
func (s *Server) Done() <-chan struct{} { return s.done }

// Err returns the reason the member stopped, nil after a clean stop.
func (s *Server) Err() error { return s.err }

// Term returns the current raft term.
func (s *Server) Term() uint64 { return s.node.Term() }

// Leader returns the current leader's ID, 0 if none.
func (s *Server) Leader() uint64 { return s.node.Leader() }

// start launches the loops once bootstrap has built every part.
func (s *Server) start() {
	go s.applyLoop()
	go s.watchFatal()
	go s.publish()
	go s.leaseLoop()
	go s.compactLoop()
	go s.corruptCheckLoop()
	go s.autopilotLoop()
	go s.reportPromotion()
	go s.memTrimLoop()
}

// watchFatal stops the member when raft reports a fatal error.
func (s *Server) watchFatal() {
	select {
	case err := <-s.node.Errc():
		if errors.Is(err, raftnode.ErrLogBehind) {
			err = fmt.Errorf("%w: member %s: its data dir %s is older than what it acknowledged to the cluster (restored from an older copy or backup?): %v. "+
				"Fix: stop it, remove the member (etcdctl member remove %s), wipe its data dir, and add it again (etcdctl member add, or cadre --join)",
				ErrStaleDataDir, membership.IDString(s.id), s.cfg.DataDir, err, membership.IDString(s.id))
		}
		s.fatal(err)
	case <-s.stopping:
	}
}

// fatal stops the member because continuing could acknowledge something
// that is not durable or not agreed.
func (s *Server) fatal(err error) {
	select {
	case <-s.stopping:
		// Already stopping: errors from closing parts are not the reason.
		if !errors.Is(err, ErrRemoved) {
			s.lg.Warn("error while stopping", "error", err.Error())
			return
		}
	default:
	}
	s.fatalOnce.Do(func() {
		s.lg.Error("stopping the member after a fatal error", "error", err.Error())
		s.err = err
		go s.shutdown(false)
	})
}

// Stop stops the member gracefully: a leader first hands leadership to the
// most caught-up voter so the cluster does not wait an election timeout.
func (s *Server) Stop() {
	s.shutdown(true)
	<-s.done
}

func (s *Server) shutdown(graceful bool) {
	s.stopOnce.Do(func() {
		if graceful {
			s.transferLeadershipOnStop()
		}
		close(s.stopping)
		// The apply loop finishes its batch before the backend closes.
		<-s.applyDone
		s.node.Stop()
		s.tr.Stop()
		if s.peerSrv != nil {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			_ = s.peerSrv.Shutdown(ctx)
			cancel()
		}
		if err := s.wal.Close(); err != nil {
			s.lg.Warn("closing WAL", "error", err.Error())
		}
		if err := s.store.Close(); err != nil {
			s.lg.Warn("closing backend", "error", err.Error())
		}
		s.lg.Info("stopped member")
		close(s.done)
	})
}

// transferLeadershipOnStop hands leadership over before a graceful stop,
// so the cluster does not wait an election timeout for a new leader.
func (s *Server) transferLeadershipOnStop() {
	if !s.node.IsLeader() {
		return
	}
	if err := s.transferLeadership(context.Background(), "graceful stop"); err != nil {
		s.lg.Warn("leadership transfer on stop failed; stopping anyway", "error", err.Error())
	}
}

// nextID returns a request ID unique across the cluster: the member ID's
// low bits keep members apart, the counter keeps requests apart.
func (s *Server) nextID() uint64 { return s.reqID.Add(1) }

func initialRequestID(memberID uint64) uint64 {
	return (memberID&0xffff)<<48 | (uint64(time.Now().UnixMilli())&0xffffffffff)<<8
}

func idAttr(key string, id uint64) slog.Attr { return slog.String(key, fmt.Sprintf("%016x", id)) }
