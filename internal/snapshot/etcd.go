package snapshot

import (
	"encoding/binary"
	"fmt"
	"log/slog"
	"os"
	"strings"

	bolt "go.etcd.io/bbolt"
	"go.etcd.io/etcd/api/v3/mvccpb"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/cadrekv/cadre/internal/auth"
	"github.com/cadrekv/cadre/internal/storage/schema"
)

// Migration from etcd 3.5+. etcd's backend (server/storage/schema):
//
//	key    main(8 BE) '_' sub(8 BE) [+ 't' for a deletion] -> mvccpb.KeyValue
//	       (a deletion holds only Key; an empty value is etcdutl's
//	       --bump-revision marker)
//	meta   "finishedCompactRev", "scheduledCompactRev": revision keys as above;
//	       "consistent_index", "term", "confState", "storageVersion", ...
//	lease  8-byte BE lease ID -> leasepb.Lease{ID=1, TTL=2, RemainingTTL=3}
//	auth   "authEnabled" (1 byte), "authRevision" (8 bytes BE)
//	authUsers / authRoles   name -> authpb.User / authpb.Role (bcrypt hashes
//	       inside, so passwords keep working)
//	members, members_removed, cluster, alarm: not migrated (the new cluster
//	has its own members, and starts without the old one's alarms).
//
// Revisions are kept exactly (main and sub), so mod revisions, create
// revisions and versions read the same on Cadre.

// copyBatch bounds the records written per bbolt transaction, so memory
// stays flat on large files.
const copyBatch = 10000

// convertEtcd writes the etcd backend at src as a new Cadre database at dst.
func convertEtcd(src, dst string, lg *slog.Logger) (compactPlan, error) {
	var plan compactPlan
	in, err := openDB(src)
	if err != nil {
		return plan, err
	}
	defer in.Close()
	out, err := bolt.Open(dst, 0o600, &bolt.Options{NoSync: true})
	if err != nil {
		return plan, fmt.Errorf("snapshot: create %s: %w", dst, err)
	}
	closed := false
	defer func() {
		if !closed {
			out.Close()
			os.Remove(dst)
		}
	}()
	err = out.Update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{cadreKV, cadreMVCC, cadreMeta} {
			if _, err := tx.CreateBucket(b); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return plan, fmt.Errorf("snapshot: create buckets in %s: %w", dst, err)
	}

	var stats struct {
		revisions, leases, users, roles int
		authEnabled                     bool
	}
	var finished int64
	err = in.View(func(itx *bolt.Tx) error {
		meta := itx.Bucket(etcdMeta)
		var ok bool
		if finished, ok = etcdMetaRev(meta, "finishedCompactRev"); !ok && meta.Get([]byte("finishedCompactRev")) != nil {
			return fmt.Errorf("%w: etcd meta finishedCompactRev is %x, expected a revision", ErrNotDatabase, meta.Get([]byte("finishedCompactRev")))
		}
		if sched, _ := etcdMetaRev(meta, "scheduledCompactRev"); sched > finished {
			plan.compactTo = sched // etcd would finish this compaction at start
		}
		var err error
		if stats.users, stats.roles, stats.authEnabled, err = copyEtcdAuth(itx, out); err != nil {
			return err
		}
		if stats.revisions, plan.floor, err = copyEtcdKeys(itx.Bucket(etcdKey), out); err != nil {
			return err
		}
		stats.leases, err = copyEtcdLeases(itx.Bucket(etcdLease), out)
		if err != nil {
			return err
		}
		return copyCadreRecords(itx.Bucket([]byte(cadreBucket)), out)
	})
	if err != nil {
		return plan, err
	}
	err = out.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(cadreMVCC).Put(schema.KeyCompactedRev, binary.BigEndian.AppendUint64(nil, uint64(finished)))
	})
	if err == nil {
		err = out.Sync()
	}
	closed = true
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(dst)
		return plan, fmt.Errorf("snapshot: write %s: %w", dst, err)
	}
	lg.Info("converted etcd snapshot", "revisions", stats.revisions, "leases", stats.leases, "compacted", finished,
		"users", stats.users, "roles", stats.roles, "auth-enabled", stats.authEnabled)
	return plan, nil
}

// etcdMetaRev reads a revision stored in etcd's meta bucket.
func etcdMetaRev(meta *bolt.Bucket, key string) (int64, bool) {
	v := meta.Get([]byte(key))
	r, err := parseEtcdRev(v)
	if err != nil {
		return 0, false
	}
	return r.main, true
}

// copyEtcdKeys copies every revision of etcd's key bucket into Cadre's kv
// bucket. It returns the count and the highest bump-marker revision.
func copyEtcdKeys(src *bolt.Bucket, out *bolt.DB) (n int, floor int64, err error) {
	type rec struct{ k, v []byte }
	batch := make([]rec, 0, copyBatch)
	flush := func() error {
		err := out.Update(func(tx *bolt.Tx) error {
			kv := tx.Bucket(cadreKV)
			kv.FillPercent = 0.9 // keys arrive in order
			for _, r := range batch {
				if err := kv.Put(r.k, r.v); err != nil {
					return err
				}
			}
			return nil
		})
		batch = batch[:0]
		return err
	}
	c := src.Cursor()
	for k, v := c.First(); k != nil; k, v = c.Next() {
		r, err := parseEtcdRev(k)
		if err != nil {
			return n, floor, err
		}
		if len(v) == 0 {
			floor = max(floor, r.main)
			continue
		}
		key := binary.BigEndian.AppendUint64(make([]byte, 0, 17), uint64(r.main))
		key = binary.BigEndian.AppendUint64(key, uint64(r.sub))
		val := v
		if r.tomb {
			var kv mvccpb.KeyValue
			if err := proto.Unmarshal(v, &kv); err != nil {
				return n, floor, fmt.Errorf("%w: etcd deletion at revision %d/%d: %v", ErrNotDatabase, r.main, r.sub, err)
			}
			// Cadre's deletion records carry their revision.
			if val, err = proto.Marshal(&mvccpb.KeyValue{Key: kv.Key, ModRevision: r.main}); err != nil {
				return n, floor, err
			}
			key = append(key, 't')
		} else {
			val = append([]byte(nil), v...) // bbolt's values live only as long as the read transaction
		}
		batch = append(batch, rec{key, val})
		n++
		if len(batch) == copyBatch {
			if err := flush(); err != nil {
				return n, floor, fmt.Errorf("snapshot: write revisions: %w", err)
			}
		}
	}
	if err := flush(); err != nil {
		return n, floor, fmt.Errorf("snapshot: write revisions: %w", err)
	}
	return n, floor, nil
}

// copyEtcdLeases stores etcd's leases as Cadre lease records, with the
// full TTL remaining (as after an etcd leader change).
func copyEtcdLeases(src *bolt.Bucket, out *bolt.DB) (int, error) {
	if src == nil {
		return 0, nil
	}
	n := 0
	err := out.Update(func(tx *bolt.Tx) error {
		meta := tx.Bucket(cadreMeta)
		return src.ForEach(func(k, v []byte) error {
			id, ttl, err := decodeEtcdLease(v)
			if err != nil {
				return fmt.Errorf("%w: etcd lease %x: %v", ErrNotDatabase, k, err)
			}
			ttl = min(max(ttl, 1), schema.MaxLeaseTTL)
			n++
			return meta.Put([]byte(schema.LeaseKey(id)), schema.EncodeLease(id, ttl, ttl))
		})
	})
	return n, err
}

// decodeEtcdLease reads leasepb.Lease's ID (1) and TTL (2).
func decodeEtcdLease(b []byte) (id, ttl int64, err error) {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return 0, 0, protowire.ParseError(n)
		}
		b = b[n:]
		if typ == protowire.VarintType && (num == 1 || num == 2) {
			v, m := protowire.ConsumeVarint(b)
			if m < 0 {
				return 0, 0, protowire.ParseError(m)
			}
			if num == 1 {
				id = int64(v)
			} else {
				ttl = int64(v)
			}
			b = b[m:]
			continue
		}
		m := protowire.ConsumeFieldValue(num, typ, b)
		if m < 0 {
			return 0, 0, protowire.ParseError(m)
		}
		b = b[m:]
	}
	if id == 0 {
		return 0, 0, fmt.Errorf("lease ID is 0")
	}
	return id, ttl, nil
}

// copyEtcdAuth carries etcd's users, roles and auth switch over as Cadre's
// auth records (same protobuf messages).
func copyEtcdAuth(itx *bolt.Tx, out *bolt.DB) (users, roles int, enabled bool, err error) {
	var rev uint64
	if b := itx.Bucket([]byte("auth")); b != nil {
		if v := b.Get([]byte("authEnabled")); len(v) == 1 && v[0] == 1 {
			enabled = true
		}
		if v := b.Get([]byte("authRevision")); len(v) == 8 {
			rev = binary.BigEndian.Uint64(v)
		}
	}
	collect := func(name string) map[string][]byte {
		m := map[string][]byte{}
		if b := itx.Bucket([]byte(name)); b != nil {
			_ = b.ForEach(func(k, v []byte) error {
				m[string(k)] = append([]byte(nil), v...)
				return nil
			})
		}
		return m
	}
	u, r := collect("authUsers"), collect("authRoles")
	if len(u) == 0 && len(r) == 0 && !enabled {
		return 0, 0, false, nil
	}
	err = out.Update(func(tx *bolt.Tx) error {
		meta := tx.Bucket(cadreMeta)
		for k, v := range auth.MetaRecords(enabled, rev, u, r) {
			if err := meta.Put([]byte(k), v); err != nil {
				return err
			}
		}
		return nil
	})
	return len(u), len(r), enabled, err
}

// copyCadreRecords brings back the records Cadre exported beside etcd's
// buckets (export.go): the autopilot configuration and the audit trail.
func copyCadreRecords(src *bolt.Bucket, out *bolt.DB) error {
	if src == nil {
		return nil
	}
	return out.Update(func(tx *bolt.Tx) error {
		meta := tx.Bucket(cadreMeta)
		return src.ForEach(func(k, v []byte) error {
			key := string(k)
			if key != schema.MetaAutopilot && !strings.HasPrefix(key, schema.AuditPrefix) {
				return nil // only what export writes there
			}
			return meta.Put(append([]byte(nil), k...), append([]byte(nil), v...))
		})
	})
}
