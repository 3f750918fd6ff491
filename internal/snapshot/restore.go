package snapshot

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"

	bolt "go.etcd.io/bbolt"
	"go.etcd.io/raft/v3/raftpb"

	"github.com/cadrekv/cadre/internal/membership"
	"github.com/cadrekv/cadre/internal/storage/mvcc"
	"github.com/cadrekv/cadre/internal/storage/schema"
	"github.com/cadrekv/cadre/internal/storage/wal"
)

// RestoreConfig describes one member of the new cluster.
type RestoreConfig struct {
	SnapshotPath        string
	Name                string
	InitialCluster      string   // name=peerURL,... (a name may repeat for several URLs)
	InitialClusterToken string   // default "etcd-cluster", as etcd
	AdvertisePeerURLs   []string // optional; must match Name's URLs in InitialCluster
	DataDir             string   // must be missing or empty
	// BumpRevision raises the revision by this much and MarkCompacted
	// compacts at the result, so clients watching from an older revision
	// get "compacted" instead of silently missing events (etcdutl's flags).
	BumpRevision  uint64
	MarkCompacted bool
	SkipHashCheck bool // accept a raw copy of member/db (no trailer)
	Logger        *slog.Logger
}

// Restored reports what Restore built.
type Restored struct {
	MemberID, ClusterID uint64
	Members             []*membership.Member
	Layout              Layout
	Revision, Compacted int64
}

func (c *RestoreConfig) validate() error {
	switch {
	case c.SnapshotPath == "":
		return fmt.Errorf("%w: no snapshot file given", ErrInvalidConfig)
	case c.Name == "":
		return fmt.Errorf("%w: --name is required: the name of this member in --initial-cluster", ErrInvalidConfig)
	case c.InitialCluster == "":
		return fmt.Errorf("%w: --initial-cluster is required, e.g. --initial-cluster %s=http://10.0.0.1:2380,...", ErrInvalidConfig, c.Name)
	case c.DataDir == "":
		return fmt.Errorf("%w: --data-dir is required: a new, empty directory for this member", ErrInvalidConfig)
	case c.BumpRevision > 0 && !c.MarkCompacted:
		return fmt.Errorf("%w: --bump-revision needs --mark-compacted, so watchers from before the restore are told their revision is gone", ErrInvalidConfig)
	}
	if c.InitialClusterToken == "" {
		c.InitialClusterToken = "etcd-cluster"
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return nil
}

// ParseInitialCluster parses name=URL,name=URL into sorted URL strings per
// name, normalised as the server normalises --initial-cluster.
func ParseInitialCluster(raw string) (map[string][]string, error) {
	out := map[string][]string{}
	for item := range strings.SplitSeq(raw, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		name, rawURL, ok := strings.Cut(item, "=")
		name, rawURL = strings.TrimSpace(name), strings.TrimSpace(rawURL)
		u, err := url.Parse(rawURL)
		if !ok || name == "" || err != nil || u.Scheme == "" || u.Host == "" {
			return nil, fmt.Errorf("%w: invalid --initial-cluster entry %q: expected name=peerURL, like infra1=http://10.0.0.1:2380", ErrInvalidConfig, item)
		}
		out[name] = append(out[name], u.String())
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: --initial-cluster %q names no member", ErrInvalidConfig, raw)
	}
	for _, urls := range out {
		slices.Sort(urls)
	}
	return out, nil
}

// Restore builds cfg.DataDir for one member of a new cluster from the
// snapshot file. On failure it removes what it created.
func Restore(cfg RestoreConfig) (_ *Restored, err error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	lg := cfg.Logger
	initial, err := ParseInitialCluster(cfg.InitialCluster)
	if err != nil {
		return nil, err
	}
	clusterID, members, err := membership.Bootstrap(initial, cfg.InitialClusterToken)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidConfig, err)
	}
	var self *membership.Member
	for _, m := range members {
		if m.Name == cfg.Name {
			self = m
		}
	}
	if self == nil {
		return nil, fmt.Errorf("%w: --name %q is not in --initial-cluster %q; add %s=<its peer URL>", ErrInvalidConfig, cfg.Name, cfg.InitialCluster, cfg.Name)
	}
	if len(cfg.AdvertisePeerURLs) > 0 {
		adv, err := ParseInitialCluster(cfg.Name + "=" + strings.Join(cfg.AdvertisePeerURLs, ","+cfg.Name+"="))
		if err != nil {
			return nil, err
		}
		if !slices.Equal(adv[cfg.Name], self.PeerURLs) {
			return nil, fmt.Errorf("%w: --initial-advertise-peer-urls %s does not match %s's URLs %s in --initial-cluster; make them the same",
				ErrInvalidConfig, strings.Join(adv[cfg.Name], ","), cfg.Name, strings.Join(self.PeerURLs, ","))
		}
	}

	cleanup, err := prepareDataDir(cfg.DataDir)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			cleanup()
		}
	}()
	memberDir := filepath.Join(cfg.DataDir, "member")
	dbPath := schema.DBPath(cfg.DataDir)
	layout, plan, err := writeDB(cfg.SnapshotPath, dbPath, cfg.SkipHashCheck, lg)
	if err != nil {
		return nil, err
	}
	res := &Restored{MemberID: self.ID, ClusterID: clusterID, Members: members, Layout: layout}
	if err := finalizeDB(dbPath, clusterID, members, plan, cfg, res, lg); err != nil {
		return nil, err
	}
	if err := createWAL(filepath.Join(memberDir, "wal"), self.ID, clusterID, members, lg); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Join(memberDir, "snap"), 0o700); err != nil {
		return nil, fmt.Errorf("snapshot: create %s: %w", filepath.Join(memberDir, "snap"), err)
	}
	if err := syncDir(memberDir); err != nil {
		return nil, err
	}
	lg.Info("restored snapshot", "path", cfg.SnapshotPath, "data-dir", cfg.DataDir, "layout", string(layout),
		"member-id", membership.IDString(self.ID), "cluster-id", membership.IDString(clusterID),
		"revision", res.Revision, "compacted", res.Compacted)
	return res, nil
}

// prepareDataDir refuses a data dir holding anything and creates
// <dir>/member; cleanup removes what it created.
func prepareDataDir(dir string) (cleanup func(), err error) {
	created := false
	ents, err := os.ReadDir(dir)
	switch {
	case errors.Is(err, os.ErrNotExist):
		created = true
	case err != nil:
		return nil, fmt.Errorf("snapshot: read --data-dir %s: %w", dir, err)
	case len(ents) > 0:
		return nil, fmt.Errorf("%w: --data-dir %s already holds %q; restore into a new, empty directory (never over a member's data)", ErrDataDirNotEmpty, dir, ents[0].Name())
	}
	// member/snap holds the backend (schema.DBPath), as in etcd.
	if err := os.MkdirAll(filepath.Join(dir, "member", "snap"), 0o700); err != nil {
		return nil, fmt.Errorf("snapshot: create %s: %w", filepath.Join(dir, "member", "snap"), err)
	}
	return func() {
		if created {
			os.RemoveAll(dir)
		} else {
			os.RemoveAll(filepath.Join(dir, "member"))
		}
	}, nil
}

// compactPlan is what the file itself asks of the finished store: an
// unfinished compaction (etcd) and a revision floor (etcd's bump marker).
type compactPlan struct {
	compactTo int64
	floor     int64
}

// writeDB verifies the snapshot and writes dbPath in Cadre's layout.
func writeDB(src, dbPath string, skipHash bool, lg *slog.Logger) (Layout, compactPlan, error) {
	tmp := dbPath + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return "", compactPlan{}, fmt.Errorf("snapshot: create %s: %w", tmp, err)
	}
	defer os.Remove(tmp)
	_, err = copyVerified(src, f, skipHash)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return "", compactPlan{}, err
	}
	db, err := openDB(tmp)
	if err != nil {
		return "", compactPlan{}, err
	}
	var layout Layout
	err = db.View(func(tx *bolt.Tx) error {
		if err := checkDB(tx, src); err != nil {
			return err
		}
		layout, err = detect(tx, src)
		return err
	})
	db.Close()
	if err != nil {
		return "", compactPlan{}, err
	}
	if layout == LayoutCadre {
		if err := os.Rename(tmp, dbPath); err != nil {
			return "", compactPlan{}, fmt.Errorf("snapshot: install %s: %w", dbPath, err)
		}
		return layout, compactPlan{}, nil
	}
	plan, err := convertEtcd(tmp, dbPath, lg)
	return layout, plan, err
}

// finalizeDB gives the store its new identity: the new membership, no
// alarms, applied index = number of members (the WAL's bootstrap entries),
// then the compactions and the revision bump.
func finalizeDB(dbPath string, clusterID uint64, members []*membership.Member, plan compactPlan, cfg RestoreConfig, res *Restored, lg *slog.Logger) error {
	cl := membership.New(clusterID)
	for _, m := range members {
		if err := cl.Add(m); err != nil {
			return fmt.Errorf("snapshot: building membership: %w", err)
		}
	}
	s, err := mvcc.Open(dbPath, mvcc.Options{Logger: lg})
	if err != nil {
		return fmt.Errorf("snapshot: the restored database does not open: %w", err)
	}
	alarms, err := s.MetaWithPrefix(schema.AlarmPrefix) // a new cluster starts without the old one's alarms
	if err != nil {
		s.Close()
		return err
	}
	rev, compacted := s.Rev()
	latest := max(rev, plan.floor)
	compactTo, floor := plan.compactTo, plan.floor
	if cfg.BumpRevision > 0 {
		compactTo, floor = rev, latest+int64(cfg.BumpRevision)
	}
	b, err := s.Begin()
	if err != nil {
		s.Close()
		return err
	}
	b.SetMeta(schema.MetaMembership, cl.Marshal())
	for k := range alarms {
		b.SetMeta(k, nil)
	}
	b.SetApplied(uint64(len(members)), 1)
	if compactTo > compacted && compactTo <= rev {
		if _, err := b.Compact(compactTo); err != nil {
			b.Abort()
			s.Close()
			return fmt.Errorf("snapshot: compacting at %d: %w", compactTo, err)
		}
	}
	err = b.Commit()
	if err == nil {
		// The restored file is handed over fully compacted.
		err = s.WaitCompaction(context.Background())
	}
	if cerr := s.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("snapshot: writing the new membership: %w", err)
	}
	if floor > max(rev, compacted) {
		// The store's revision is max(newest write, compacted revision):
		// raising the compacted revision is how the bump is recorded.
		if err := setCompacted(dbPath, floor); err != nil {
			return err
		}
	}
	s, err = mvcc.Open(dbPath, mvcc.Options{Logger: lg})
	if err != nil {
		return fmt.Errorf("snapshot: the restored database does not reopen: %w", err)
	}
	res.Revision, res.Compacted = s.Rev()
	return s.Close()
}

func setCompacted(dbPath string, rev int64) error {
	db, err := bolt.Open(dbPath, 0o600, nil)
	if err != nil {
		return fmt.Errorf("snapshot: open %s: %w", dbPath, err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(cadreMVCC).Put(schema.KeyCompactedRev, binary.BigEndian.AppendUint64(nil, uint64(rev)))
	})
	if cerr := db.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("snapshot: mark revision %d compacted in %s: %w", rev, dbPath, err)
	}
	return nil
}

// createWAL writes what raft.StartNode would: one AddNode change per member
// (indexes 1..n, term 1, context = the member as JSON) and a HardState
// committing them.
func createWAL(dir string, self, clusterID uint64, members []*membership.Member, lg *slog.Logger) error {
	// A restore starts a new incarnation on purpose: a new cluster.
	meta, _ := json.Marshal(schema.WALMetadata{MemberID: self, ClusterID: clusterID, Incarnation: schema.NewIncarnation()})
	w, err := wal.Create(dir, meta, wal.Options{Logger: lg})
	if err != nil {
		return fmt.Errorf("snapshot: create WAL: %w", err)
	}
	ents := make([]*raftpb.Entry, 0, len(members))
	for i, m := range members {
		ents = append(ents, &raftpb.Entry{Type: new(raftpb.EntryConfChange), Term: new(uint64(1)), Index: new(uint64(i + 1)), Data: membership.AddEntryData(m)})
	}
	hs := &raftpb.HardState{Term: new(uint64(1)), Vote: new(uint64(0)), Commit: new(uint64(len(members)))}
	err = w.Save(hs, ents)
	if cerr := w.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("snapshot: write the bootstrap entries to the WAL: %w", err)
	}
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("snapshot: open %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("snapshot: sync %s: %w", dir, err)
	}
	return nil
}
