package server

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	bolt "go.etcd.io/bbolt"
	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"

	"github.com/cadrekv/cadre/internal/apply"
	"github.com/cadrekv/cadre/internal/config"
	"github.com/cadrekv/cadre/internal/lease"
	"github.com/cadrekv/cadre/internal/membership"
	"github.com/cadrekv/cadre/internal/metrics"
	"github.com/cadrekv/cadre/internal/netutil"
	"github.com/cadrekv/cadre/internal/raftnode"
	"github.com/cadrekv/cadre/internal/storage/mvcc"
	"github.com/cadrekv/cadre/internal/storage/schema"
	"github.com/cadrekv/cadre/internal/storage/wal"
	"github.com/cadrekv/cadre/internal/tlsutil"
	"github.com/cadrekv/cadre/internal/transport"
	"github.com/cadrekv/cadre/internal/wait"
)

// Paths inside a data dir.
func memberDir(dataDir string) string { return filepath.Join(dataDir, "member") }
func walDir(dataDir string) string    { return filepath.Join(memberDir(dataDir), "wal") }
func dbPath(dataDir string) string    { return schema.DBPath(dataDir) }
func snapDir(dataDir string) string   { return filepath.Join(memberDir(dataDir), "snap") }
func snapPath(dataDir string, index uint64) string {
	return filepath.Join(snapDir(dataDir), fmt.Sprintf("%016x.db", index))
}

// moveLegacyDB moves a bbolt file from where earlier Cadre versions kept
// it (member/db) to etcd's place (member/snap/db). A rename within the data
// dir is atomic; a crash before it leaves the old layout, which the next
// start moves again.
func moveLegacyDB(dataDir string, lg *slog.Logger) error {
	old, cur := schema.LegacyDBPath(dataDir), schema.DBPath(dataDir)
	if _, err := os.Stat(old); err != nil {
		return nil // nothing to move
	}
	if _, err := os.Stat(cur); err == nil {
		return fmt.Errorf("data dir %s holds a backend both at %s (earlier Cadre versions) and at %s; keep the one the member last used (newer modification time) and remove the other", dataDir, old, cur)
	}
	if err := os.Rename(old, cur); err != nil {
		return fmt.Errorf("moving the backend from %s to %s: %w", old, cur, err)
	}
	if err := syncDir(filepath.Dir(cur)); err != nil {
		return err
	}
	lg.Info("moved the backend to etcd's location", "from", old, "to", cur)
	return nil
}

// refuseEtcdDataDir stops Cadre from starting on (and so writing into) a
// data dir of etcd's: its backend has etcd's buckets. The way in is a
// snapshot.
func refuseEtcdDataDir(dataDir string) error {
	p := schema.DBPath(dataDir)
	if _, err := os.Stat(p); err != nil {
		return nil
	}
	db, err := bolt.Open(p, 0o400, &bolt.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		return nil // mvcc.Open reports what is wrong with it
	}
	defer db.Close()
	etcd := false
	_ = db.View(func(tx *bolt.Tx) error {
		etcd = tx.Bucket([]byte("key")) != nil && tx.Bucket(schema.BucketKV) == nil
		return nil
	})
	if etcd {
		return fmt.Errorf("data dir %s is etcd's (its backend %s has etcd's layout); Cadre does not run on an etcd data dir and has changed nothing in it. "+
			"To move its data to Cadre, take a snapshot (etcdctl snapshot save FILE against the running etcd, or a copy of a stopped member's %s with --skip-hash-check) and restore it with `cadre snapshot restore FILE --data-dir NEW_DIR ...` (docs/MIGRATION.md)",
			dataDir, p, p)
	}
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// HasData reports whether dataDir already holds a member's state; the
// bootstrap flags are then ignored.
func HasData(dataDir string) bool { return wal.Exist(walDir(dataDir)) }

// New bootstraps a member in stages (backend, WAL and membership, transport,
// raft) and starts it. A stage that fails closes the ones before it.
// cfg must have been validated: nothing is created on disk before New.
func New(cfg *config.Config, lg *slog.Logger, peerTLS PeerTLS) (_ *Server, err error) {
	s := &Server{
		cfg:       cfg,
		metrics:   metrics.New(),
		reqs:      wait.NewRegistry(),
		readyc:    make(chan struct{}),
		applyDone: make(chan struct{}),
		stopping:  make(chan struct{}),
		done:      make(chan struct{}),
		peers:     map[uint64][]string{},
		reqTimout: 5*time.Second + 2*cfg.ElectionTimeout,
	}
	s.metrics.ServerVersion.WithLabelValues(Version).Set(1)
	s.peerTLS = peerTLS
	s.peerClient = s.peerHTTP(0)
	if err := checkRemovedMarker(cfg.DataDir); err != nil {
		return nil, err
	}
	haveWAL := wal.Exist(walDir(cfg.DataDir))
	s.joined = !haveWAL && cfg.Join.Enabled()

	// Stage 0: agree with the peers before anything is created on disk.
	var join *joinPlan
	if !haveWAL {
		if join, err = s.planBootstrap(); err != nil {
			return nil, err
		}
	}

	// Stage 1: backend.
	if err := os.MkdirAll(snapDir(cfg.DataDir), 0o700); err != nil {
		return nil, fmt.Errorf("creating data dir %s: %w", cfg.DataDir, err)
	}
	if err := moveLegacyDB(cfg.DataDir, lg); err != nil {
		return nil, err
	}
	if err := refuseEtcdDataDir(cfg.DataDir); err != nil {
		return nil, err
	}
	s.store, err = mvcc.Open(dbPath(cfg.DataDir), mvcc.Options{Logger: lg, OnCommit: s.metrics.ObserveBackendCommit,
		CommitInterval: cmp.Or(cfg.BackendBatchInterval, backendCommitInterval), CommitOps: cfg.BackendBatchLimit,
		ProgressInterval:     cfg.WatchProgressNotifyInterval,
		CompactionBatchLimit: cfg.CompactionBatchLimit, CompactionSleepInterval: cfg.CompactionSleepInterval})
	if err != nil {
		return nil, fmt.Errorf("opening backend %s: %w", dbPath(cfg.DataDir), err)
	}
	defer func() {
		if err != nil {
			s.store.Close()
		}
	}()
	// The lessor applies TTLs as proposed: the proposer raises them to
	// the minimum (LeaseGrant), so a member's own election timeout never
	// changes replicated state.
	s.lessor = lease.New(lease.Options{Logger: lg})
	s.alarms = apply.NewAlarms()
	if err = s.initAuth(); err != nil {
		return nil, err
	}

	// Stage 2: WAL and membership.
	var (
		ms    = raft.NewMemoryStorage()
		peers []raft.Peer
		start raftnode.Config
	)
	switch {
	case haveWAL:
		err = s.restartFromDisk(ms, &start, lg)
	case join.existing:
		err = s.createJoining(join, lg)
	default:
		peers, err = s.bootstrapNew(join, lg)
	}
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			s.wal.Close()
		}
	}()
	s.lg = lg.With(idAttr("local-member-id", s.id), idAttr("cluster-id", s.ClusterID()))
	s.reqID.Store(initialRequestID(s.id))
	s.applier = apply.New(apply.Config{
		Backend: backend{s.store},
		Lessor:  s.lessor,
		Auth:    s.auth,
		Alarms:  s.alarms,
		Members: s.cluster,
		OnAuthenticate: func(hash, user string, rev uint64) {
			s.tokens.Add(hash, user, rev)
		},
		Logger: s.lg,
	})
	if err = s.applier.Recover(s.ClusterID()); err != nil {
		return nil, err
	}

	// Stage 3: transport (its own log lines carry the member ID).
	s.tr = transport.New(transport.Config{
		LocalID:   s.id,
		ClusterID: s.ClusterID(),
		Raft:      (*peerRaft)(s),
		Snapshots: (*peerRaft)(s),
		Logger:    lg.With(idAttr("cluster-id", s.ClusterID())),
		IsRemoved: s.peerRemoved,
		OnRemoved: s.removedFromCluster,
		// Data dir identity (identity.go).
		Incarnation:      s.incarnation,
		CheckIncarnation: s.checkIncarnation,
		OnStaleIdentity:  s.staleIdentity,
		TLS:              peerTLS.Client,
	})

	// Stage 4: raft.
	start.ID = s.id
	start.TickInterval = cfg.HeartbeatInterval
	start.ElectionTicks = int(cfg.ElectionTimeout / cfg.HeartbeatInterval)
	start.SnapshotCount = cfg.SnapshotCount
	start.CatchUpEntries = cfg.SnapshotCatchUpEntries
	start.Storage = ms
	start.Log = s.wal
	start.Transport = s.tr
	start.Snapshots = (*peerRaft)(s)
	start.Logger = s.lg
	start.OnProposalDropped = s.proposalDropped
	start.Metrics = raftnode.Metrics{
		LeaderChanged: func(has, is bool) {
			s.metrics.HasLeader.Set(b2f(has))
			s.metrics.IsLeader.Set(b2f(is))
			s.metrics.LeaderChanges.Inc()
			// The lessor follows leadership at once (etcd does too): every
			// moment a new leader cannot renew eats into the leases that
			// clients are trying to keep alive across the change.
			s.lessorFollows(is)
		},
		Committed:     func(n int) { s.metrics.ProposalsCommitted.Add(float64(n)) },
		SnapshotSaved: func(uint64) { s.metrics.SnapshotsSaved.Inc() },
	}
	s.node = raftnode.Start(start, peers)

	// Stage 5: peers and the peer listener, now that raft can take
	// their messages.
	for _, m := range s.cluster.Members() {
		s.addPeer(m)
	}
	for _, m := range s.joinPeers {
		s.addPeer(m)
	}
	for _, p := range peers {
		if m, err := membership.DecodeMemberContext(p.Context); err == nil {
			s.addPeer(m)
		}
	}
	if err = s.listenPeers(); err != nil {
		s.node.Stop()
		s.tr.Stop()
		return nil, err
	}
	s.metrics.DBTotalSize.Set(float64(s.store.Size()))
	s.bootstrapDefrag()

	s.lg.Info("starting member",
		"name", cfg.Name, "data-dir", cfg.DataDir,
		"listen-peer-urls", urlStrings(cfg.ListenPeerURLs),
		"advertise-client-urls", urlStrings(cfg.AdvertiseClientURLs),
		"initial-advertise-peer-urls", urlStrings(cfg.InitialAdvertisePeerURLs),
		"snapshot-count", cfg.SnapshotCount, "snapshot-catchup-entries", cfg.SnapshotCatchUpEntries,
		"restarted", haveWAL)
	s.start()
	return s, nil
}

// bootstrapNew creates the WAL of a member of a new cluster and returns the
// initial peers; every member derives the same IDs from --initial-cluster.
func (s *Server) bootstrapNew(plan *joinPlan, lg *slog.Logger) ([]raft.Peer, error) {
	clusterID, members := plan.clusterID, plan.members
	s.cluster = membership.New(clusterID)
	s.incarnation = schema.NewIncarnation()
	meta, _ := json.Marshal(schema.WALMetadata{MemberID: s.id, ClusterID: clusterID, Incarnation: s.incarnation})
	w, err := wal.Create(walDir(s.cfg.DataDir), meta, wal.Options{Logger: lg, OnFsync: s.metrics.ObserveWALFsync})
	if err != nil {
		return nil, fmt.Errorf("creating WAL: %w", err)
	}
	s.wal = w
	peers := make([]raft.Peer, 0, len(members))
	for _, m := range members {
		peers = append(peers, raft.Peer{ID: m.ID, Context: membership.MemberContext(m)})
	}
	return peers, nil
}

// joinPlan is what a member without data decided before touching disk.
type joinPlan struct {
	existing  bool
	clusterID uint64
	members   []*membership.Member // new cluster: all initial members; join: the others
}

// planBootstrap works out the identity of a member that has no data yet,
// asking the peers so that a mistaken start is refused before any file is
// created and before the running cluster sees a single message.
func (s *Server) planBootstrap() (*joinPlan, error) {
	if s.cfg.InitialClusterState == "existing" {
		clusterID, self, others, err := s.joinExisting()
		if err != nil {
			return nil, err
		}
		s.id = self.ID
		s.clusterID.Store(clusterID)
		return &joinPlan{existing: true, clusterID: clusterID, members: others}, nil
	}
	clusterID, members, err := membership.Bootstrap(s.cfg.InitialClusterStrings(), s.cfg.InitialClusterToken)
	if err != nil {
		return nil, err
	}
	for _, m := range members {
		if m.Name == s.cfg.Name {
			s.id = m.ID
		}
	}
	if s.id == 0 {
		return nil, fmt.Errorf("--name %q is not in --initial-cluster %q", s.cfg.Name, s.cfg.InitialClusterRaw)
	}
	s.clusterID.Store(clusterID)
	if err := s.checkPeersAgree(clusterID, s.id, s.otherPeerURLs(), true); err != nil {
		return nil, err
	}
	return &joinPlan{clusterID: clusterID, members: members}, nil
}

// createJoining creates the data of a member joining a running cluster.
// Raft starts empty: the leader sends it the log, or a snapshot.
func (s *Server) createJoining(plan *joinPlan, lg *slog.Logger) error {
	s.cluster = membership.New(plan.clusterID)
	s.incarnation = schema.NewIncarnation()
	meta, _ := json.Marshal(schema.WALMetadata{MemberID: s.id, ClusterID: plan.clusterID, Incarnation: s.incarnation})
	w, err := wal.Create(walDir(s.cfg.DataDir), meta, wal.Options{Logger: lg, OnFsync: s.metrics.ObserveWALFsync})
	if err != nil {
		return fmt.Errorf("creating WAL: %w", err)
	}
	s.wal = w
	for _, m := range plan.members {
		s.joinPeers = append(s.joinPeers, m)
	}
	lg.Info("joining a running cluster", "member-id", membership.IDString(s.id), "cluster-id", membership.IDString(plan.clusterID), "members", len(plan.members)+1)
	return nil
}

// restartFromDisk reloads a member from its data dir. The initial-* flags
// no longer matter: the WAL binds the data dir to its member and cluster.
func (s *Server) restartFromDisk(ms *raft.MemoryStorage, start *raftnode.Config, lg *slog.Logger) error {
	w, rep, err := wal.Open(walDir(s.cfg.DataDir), wal.Options{Logger: lg, OnFsync: s.metrics.ObserveWALFsync})
	if err != nil {
		return fmt.Errorf("opening WAL in %s: %w", walDir(s.cfg.DataDir), err)
	}
	s.wal = w
	removeStaleExports(s.cfg.DataDir, lg)
	var meta schema.WALMetadata
	if err := json.Unmarshal(rep.Metadata, &meta); err != nil || meta.MemberID == 0 {
		w.Close()
		return fmt.Errorf("WAL in %s has unreadable metadata (%v); the data dir is damaged: restore it from a snapshot or wipe it and re-add the member", walDir(s.cfg.DataDir), err)
	}
	s.id = meta.MemberID
	s.incarnation = meta.Incarnation
	s.clusterID.Store(meta.ClusterID)
	lg.Info("data dir already holds state; ignoring --initial-cluster, --initial-cluster-state and --initial-cluster-token",
		"data-dir", s.cfg.DataDir, "member-id", membership.IDString(s.id), "cluster-id", membership.IDString(meta.ClusterID))

	var snapIndex uint64
	if rep.Snapshot != nil {
		snapIndex = rep.Snapshot.GetIndex()
	}
	if applied, _ := s.store.Applied(); applied < snapIndex {
		// We crashed after recording a snapshot from the leader but before
		// installing its data: install it now.
		p := snapPath(s.cfg.DataDir, snapIndex)
		if _, err := os.Stat(p); err != nil {
			w.Close()
			return fmt.Errorf("backend is at index %d but the WAL starts from a snapshot at %d whose data file %s is missing (%v); the data dir is damaged: wipe it and re-add the member", applied, snapIndex, p, err)
		}
		if err := s.store.ReplaceWith(p); err != nil {
			w.Close()
			return fmt.Errorf("installing snapshot %s: %w", p, err)
		}
	}
	if err := s.loadMembership(meta.ClusterID); err != nil {
		w.Close()
		return err
	}
	// A data dir from another cluster must never join this one: ask the
	// peers named by the flags and by the stored membership.
	urls := s.otherPeerURLs()
	for _, m := range s.cluster.Members() {
		if m.ID != s.id {
			urls = append(urls, m.PeerURLs...)
		}
	}
	if err := s.checkPeersAgree(meta.ClusterID, s.id, dedup(urls), false); err != nil {
		w.Close()
		return err
	}

	if s.cfg.ForceNewCluster {
		applied, _ := s.store.Applied()
		if err := s.forceNewCluster(w, rep, applied, lg); err != nil {
			w.Close()
			return err
		}
	}
	if rep.Snapshot != nil {
		if err := ms.ApplySnapshot(&raftpb.Snapshot{Metadata: rep.Snapshot}); err != nil {
			w.Close()
			return fmt.Errorf("loading snapshot record %d: %w", snapIndex, err)
		}
		start.ConfState = rep.Snapshot.GetConfState()
	}
	if err := ms.SetHardState(rep.HardState); err != nil {
		w.Close()
		return fmt.Errorf("loading hard state: %w", err)
	}
	if err := ms.Append(rep.Entries); err != nil {
		w.Close()
		return fmt.Errorf("loading %d WAL entries: %w", len(rep.Entries), err)
	}
	start.Applied, _ = s.store.Applied()
	start.SnapshotIndex = snapIndex
	return nil
}

// loadMembership reads the membership saved with the backend data (the
// applier reloads it with the rest of the state; this is needed earlier,
// to check the peers before raft starts).
func (s *Server) loadMembership(clusterID uint64) error {
	b, err := s.store.Meta(schema.MetaMembership)
	if err != nil {
		return fmt.Errorf("reading membership from backend: %w", err)
	}
	s.cluster, err = membership.Load(b, clusterID)
	return err
}

// listenPeers binds every --listen-peer-urls address and serves the peer
// API on it.
func (s *Server) listenPeers() error {
	mux := http.NewServeMux()
	mux.Handle("/cadre/peer/", s.tr.Handler())
	s.registerPeerHandlers(mux)
	s.peerSrv = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	for _, u := range s.cfg.ListenPeerURLs {
		ln, err := netutil.Listen(u)
		if err != nil {
			for _, l := range s.peerLns {
				l.Close()
			}
			return fmt.Errorf("cannot listen on --listen-peer-urls %s: %w (is another member or process using that port?)", u.String(), err)
		}
		s.peerLns = append(s.peerLns, ln)
	}
	for i, u := range s.cfg.ListenPeerURLs {
		if netutil.IsSecure(u.Scheme) {
			s.peerLns[i] = tlsutil.Listener(s.peerLns[i], s.peerTLS.Server, s.peerTLS.HandshakeTimeout, s.lg, "peer")
		}
	}
	for _, ln := range s.peerLns {
		go func(ln net.Listener) {
			if err := s.peerSrv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				s.lg.Warn("peer listener stopped", "address", ln.Addr().String(), "error", err.Error())
			}
		}(ln)
	}
	return nil
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

func dedup(in []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, s := range in {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}
