package snapshot

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"sort"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/cadrekv/cadre/internal/auth"
	"github.com/cadrekv/cadre/internal/membership"
	"github.com/cadrekv/cadre/internal/storage/schema"
)

// Export to etcd's layout, so the files `snapshot save` writes are etcd's
// own: etcdutl reads them (status, restore, --bump-revision) and etcd
// restores from them, as Cadre restores from etcd's. It is convertEtcd
// run backwards; every bucket etcd 3.7 keeps is written:
//
//	key      Cadre's kv records, keys as main '_' sub [+ 't']; a deletion
//	         holds only its key, as etcd writes it
//	meta     consistent_index, term (the applied raft position),
//	         finishedCompactRev and scheduledCompactRev, confState (JSON),
//	         storageVersion
//	lease    8-byte BE ID -> leasepb.Lease{ID, TTL, RemainingTTL}
//	members, members_removed   membership as etcd's JSON, by hex ID
//	cluster  clusterVersion
//	alarm    etcdserverpb.AlarmMember -> empty
//	auth, authUsers, authRoles   the same authpb records
//	cadre    Cadre's own records that etcd has no place for (the autopilot
//	         configuration, the membership audit trail), so a restore into
//	         Cadre keeps them; etcd ignores the bucket

// cadreBucket carries Cadre's own meta records in an exported file.
const cadreBucket = "cadre"

// ExportStorageVersion is the storage version written into exported
// files: the etcd release whose layout they follow.
const ExportStorageVersion = "3.7.0"

// exportProgressEvery is how many revisions pass between progress lines.
const exportProgressEvery = 200_000

// ExportEtcd writes the Cadre database at src as a new etcd 3.7 database
// at dst (no trailer: the caller streams it and appends the hash).
func ExportEtcd(src, dst string, lg *slog.Logger) error {
	if lg == nil {
		lg = slog.New(slog.DiscardHandler)
	}
	in, err := openDB(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := bolt.Open(dst, 0o600, &bolt.Options{NoSync: true})
	if err != nil {
		return fmt.Errorf("snapshot: create %s: %w", dst, err)
	}
	ok := false
	defer func() {
		if !ok {
			out.Close()
			os.Remove(dst)
		}
	}()
	start := time.Now()
	var revisions int
	err = in.View(func(itx *bolt.Tx) error {
		if itx.Bucket(cadreKV) == nil || itx.Bucket(cadreMVCC) == nil || itx.Bucket(cadreMeta) == nil {
			return fmt.Errorf("%w: %s has no Cadre buckets (kv, mvcc, meta)", ErrNotDatabase, src)
		}
		if err := exportMeta(itx, out); err != nil {
			return err
		}
		revisions, err = exportKeys(itx.Bucket(cadreKV), out, lg)
		return err
	})
	if err == nil {
		err = out.Sync()
	}
	if err != nil {
		return fmt.Errorf("snapshot: export %s to etcd's layout: %w", src, err)
	}
	ok = true
	if err := out.Close(); err != nil {
		os.Remove(dst)
		return fmt.Errorf("snapshot: write %s: %w", dst, err)
	}
	lg.Info("exported snapshot in etcd's layout", "revisions", revisions, "took", time.Since(start))
	return nil
}

// etcdRevKey is etcd's key-bucket key: main '_' sub, with 't' for a deletion.
func etcdRevKey(main, sub int64, tomb bool) []byte {
	k := make([]byte, 0, 18)
	k = binary.BigEndian.AppendUint64(k, uint64(main))
	k = append(k, '_')
	k = binary.BigEndian.AppendUint64(k, uint64(sub))
	if tomb {
		k = append(k, 't')
	}
	return k
}

// exportKeys copies every revision into etcd's key bucket, in batches.
func exportKeys(src *bolt.Bucket, out *bolt.DB, lg *slog.Logger) (int, error) {
	type rec struct{ k, v []byte }
	batch := make([]rec, 0, copyBatch)
	flush := func() error {
		err := out.Update(func(tx *bolt.Tx) error {
			b, err := tx.CreateBucketIfNotExists(etcdKey)
			if err != nil {
				return err
			}
			b.FillPercent = 0.9 // keys arrive in order
			for _, r := range batch {
				if err := b.Put(r.k, r.v); err != nil {
					return err
				}
			}
			return nil
		})
		batch = batch[:0]
		return err
	}
	n := 0
	c := src.Cursor()
	for k, v := c.First(); k != nil; k, v = c.Next() {
		tomb := len(k) == 17 && k[16] == 't'
		if len(k) != 16 && !tomb {
			return n, fmt.Errorf("%w: bad revision key %x in bucket kv", ErrNotDatabase, k)
		}
		main, sub := int64(binary.BigEndian.Uint64(k)), int64(binary.BigEndian.Uint64(k[8:]))
		val := append([]byte(nil), v...) // bbolt's values live only as long as the read transaction
		if tomb {
			var kv mvccpb.KeyValue
			if err := proto.Unmarshal(v, &kv); err != nil {
				return n, fmt.Errorf("%w: deletion at revision %d/%d: %v", ErrNotDatabase, main, sub, err)
			}
			var err error
			if val, err = proto.Marshal(&mvccpb.KeyValue{Key: kv.Key}); err != nil {
				return n, err
			}
		}
		batch = append(batch, rec{etcdRevKey(main, sub, tomb), val})
		n++
		if len(batch) == copyBatch {
			if err := flush(); err != nil {
				return n, err
			}
		}
		if n%exportProgressEvery == 0 {
			lg.Info("exporting snapshot in etcd's layout", "revisions-done", n, "at-revision", main)
		}
	}
	return n, flush()
}

// exportMeta writes every bucket but key from Cadre's mvcc and meta buckets.
func exportMeta(itx *bolt.Tx, out *bolt.DB) error {
	mv, meta := itx.Bucket(cadreMVCC), itx.Bucket(cadreMeta)
	u64 := func(k []byte) uint64 {
		if v := mv.Get(k); len(v) == 8 {
			return binary.BigEndian.Uint64(v)
		}
		return 0
	}
	records := map[string][]byte{}
	if err := meta.ForEach(func(k, v []byte) error {
		records[string(k)] = append([]byte(nil), v...)
		return nil
	}); err != nil {
		return err
	}
	cluster, err := exportedCluster(records[schema.MetaMembership])
	if err != nil {
		return err
	}
	enabled, authRev, users, roles, err := auth.DecodeMetaRecords(records)
	if err != nil {
		return err
	}
	return out.Update(func(tx *bolt.Tx) error {
		bk := map[string]*bolt.Bucket{}
		for _, name := range []string{"key", "meta", "lease", "alarm", "cluster", "members", "members_removed", "auth", "authUsers", "authRoles", cadreBucket} {
			b, err := tx.CreateBucket([]byte(name))
			if err != nil {
				return err
			}
			bk[name] = b
		}
		put := func(bucket string, k, v []byte) {
			if err == nil {
				err = bk[bucket].Put(k, v)
			}
		}
		be := func(n uint64) []byte { return binary.BigEndian.AppendUint64(nil, n) }

		put("meta", []byte("consistent_index"), be(u64(schema.KeyAppliedIndex)))
		put("meta", []byte("term"), be(u64(schema.KeyAppliedTerm)))
		if rev := int64(u64(schema.KeyCompactedRev)); rev > 0 {
			// A compaction whose deletions were under way is exported as
			// etcd's unfinished one, which etcd finishes at start.
			finished := rev
			if mv.Get(schema.KeyFinishedCompactRev) != nil {
				finished = min(rev, int64(u64(schema.KeyFinishedCompactRev)))
			}
			if finished > 0 {
				put("meta", []byte("finishedCompactRev"), etcdRevKey(finished, 0, false))
			}
			put("meta", []byte("scheduledCompactRev"), etcdRevKey(rev, 0, false))
		}
		put("meta", []byte("storageVersion"), []byte(ExportStorageVersion))
		if cluster != nil {
			cs, cerr := json.Marshal(confStateOf(cluster))
			if cerr != nil {
				return cerr
			}
			put("meta", []byte("confState"), cs)
			for _, m := range cluster.Members() {
				em := *m
				em.AddedAt, em.Incarnation = 0, 0 // Cadre's own; etcd's JSON has no such fields
				mj, merr := json.Marshal(em)      // the same JSON fields as etcd's membership.Member
				if merr != nil {
					return merr
				}
				put("members", []byte(fmt.Sprintf("%x", m.ID)), mj)
			}
			for id := range cluster.RemovedIDs() {
				put("members_removed", []byte(fmt.Sprintf("%x", id)), []byte("removed"))
			}
		}
		put("cluster", []byte("clusterVersion"), []byte(ExportStorageVersion))

		for k, v := range records {
			switch {
			case strings.HasPrefix(k, schema.LeasePrefix):
				id, granted, remaining, lerr := schema.DecodeLease(v)
				if lerr != nil {
					return lerr
				}
				put("lease", be(uint64(id)), encodeEtcdLease(id, granted, remaining))
			case k == schema.MetaAutopilot || strings.HasPrefix(k, schema.AuditPrefix):
				put(cadreBucket, []byte(k), v)
			case strings.HasPrefix(k, schema.AlarmPrefix):
				member, typ, aerr := schema.ParseAlarmKey(k)
				if aerr != nil {
					return aerr
				}
				am, aerr := proto.Marshal(&pb.AlarmMember{MemberID: member, Alarm: pb.AlarmType(typ)})
				if aerr != nil {
					return aerr
				}
				put("alarm", am, []byte{})
			}
		}

		enabledByte := byte(0)
		if enabled {
			enabledByte = 1
		}
		put("auth", []byte("authEnabled"), []byte{enabledByte})
		put("auth", []byte("authRevision"), be(authRev))
		for name, u := range users {
			put("authUsers", []byte(name), u)
		}
		for name, r := range roles {
			put("authRoles", []byte(name), r)
		}
		return err
	})
}

// exportedCluster decodes the membership record, if there is one (a file
// restored but never started has the new cluster's).
func exportedCluster(raw []byte) (*membership.Cluster, error) {
	if len(raw) == 0 {
		return nil, nil
	}
	c, err := membership.Unmarshal(raw)
	if err != nil {
		return nil, fmt.Errorf("%w: membership record: %v", ErrNotDatabase, err)
	}
	return c, nil
}

// etcdConfState is raftpb.ConfState's JSON as etcd stores it in meta.
type etcdConfState struct {
	Voters    []uint64 `json:"voters"`
	Learners  []uint64 `json:"learners,omitempty"`
	AutoLeave bool     `json:"auto_leave"`
}

func confStateOf(c *membership.Cluster) etcdConfState {
	var cs etcdConfState
	for _, m := range c.Members() {
		if m.IsLearner {
			cs.Learners = append(cs.Learners, m.ID)
		} else {
			cs.Voters = append(cs.Voters, m.ID)
		}
	}
	sort.Slice(cs.Voters, func(i, j int) bool { return cs.Voters[i] < cs.Voters[j] })
	sort.Slice(cs.Learners, func(i, j int) bool { return cs.Learners[i] < cs.Learners[j] })
	return cs
}

// encodeEtcdLease encodes leasepb.Lease{ID: 1, TTL: 2, RemainingTTL: 3}.
func encodeEtcdLease(id, ttl, remaining int64) []byte {
	b := protowire.AppendTag(nil, 1, protowire.VarintType)
	b = protowire.AppendVarint(b, uint64(id))
	b = protowire.AppendTag(b, 2, protowire.VarintType)
	b = protowire.AppendVarint(b, uint64(ttl))
	if remaining > 0 {
		b = protowire.AppendTag(b, 3, protowire.VarintType)
		b = protowire.AppendVarint(b, uint64(remaining))
	}
	return b
}
