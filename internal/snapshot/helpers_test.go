package snapshot

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"os"
	"path/filepath"
	"testing"

	bolt "go.etcd.io/bbolt"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/cadrekv/cadre/internal/storage/mvcc"
	"github.com/cadrekv/cadre/internal/storage/schema"
)

// cadreSnapshot builds a Cadre store (revisions: a=1@2, b=1@3, a=2@4,
// delete b@5, c=1@6 with lease 7; applied index 40; an alarm; an old
// membership) and returns a snapshot file of it, as Maintenance.Snapshot
// sends it.
func cadreSnapshot(t testing.TB) string {
	t.Helper()
	dir := t.TempDir()
	s, err := mvcc.Open(filepath.Join(dir, "src", "db"), mvcc.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	b, err := s.Begin()
	if err != nil {
		t.Fatal(err)
	}
	for _, kv := range []struct {
		k, v  string
		lease int64
	}{{"a", "1", 0}, {"b", "1", 0}, {"a", "2", 0}} {
		if _, err := b.Put(&pb.PutRequest{Key: []byte(kv.k), Value: []byte(kv.v), Lease: kv.lease}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := b.DeleteRange(&pb.DeleteRangeRequest{Key: []byte("b")}); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Put(&pb.PutRequest{Key: []byte("c"), Value: []byte("1"), Lease: 7}); err != nil {
		t.Fatal(err)
	}
	b.SetMeta("lease/0000000000000007", schema.EncodeLease(7, 60, 30))
	b.SetMeta("alarm/0000000000000001/NOSPACE", []byte{1})
	b.SetMeta(schema.MetaMembership, []byte(`{"clusterID":1,"members":[{"id":1,"peerURLs":["http://old:2380"]}]}`))
	b.SetApplied(40, 5)
	if err := b.Commit(); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if _, err := s.WriteSnapshot(&buf); err != nil {
		t.Fatal(err)
	}
	return writeWithTrailer(t, dir, buf.Bytes())
}

func writeWithTrailer(t testing.TB, dir string, db []byte) string {
	t.Helper()
	sum := sha256.Sum256(db)
	p := filepath.Join(dir, "snap.db")
	if err := os.WriteFile(p, append(bytes.Clone(db), sum[:]...), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// etcdSnapshot builds a file in etcd's backend layout, as etcd 3.6 writes
// it after a compaction at 3: foo (created at 2) holds revisions 3 and 5,
// bar was put at 4 and deleted at 6, lk and zz were put in one txn at 7
// (sub revisions 0 and 1), lk with lease 0x1234 (TTL 600).
func etcdSnapshot(t testing.TB) string {
	t.Helper()
	dir := t.TempDir()
	p := filepath.Join(dir, "etcd.db")
	db, err := bolt.Open(p, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	put := func(b *bolt.Bucket, k []byte, m proto.Message) {
		v, err := proto.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		if err := b.Put(k, v); err != nil {
			t.Fatal(err)
		}
	}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, n := range []string{"key", "meta", "lease", "members", "cluster", "alarm"} {
			if _, err := tx.CreateBucket([]byte(n)); err != nil {
				return err
			}
		}
		kb := tx.Bucket([]byte("key"))
		put(kb, etcdRevKey(3, 0, false), &mvccpb.KeyValue{Key: []byte("foo"), Value: []byte("v2"), CreateRevision: 2, ModRevision: 3, Version: 2})
		put(kb, etcdRevKey(4, 0, false), &mvccpb.KeyValue{Key: []byte("bar"), Value: []byte("x"), CreateRevision: 4, ModRevision: 4, Version: 1})
		put(kb, etcdRevKey(5, 0, false), &mvccpb.KeyValue{Key: []byte("foo"), Value: []byte("v3"), CreateRevision: 2, ModRevision: 5, Version: 3})
		put(kb, etcdRevKey(6, 0, true), &mvccpb.KeyValue{Key: []byte("bar")})
		put(kb, etcdRevKey(7, 0, false), &mvccpb.KeyValue{Key: []byte("lk"), Value: []byte("l"), CreateRevision: 7, ModRevision: 7, Version: 1, Lease: 0x1234})
		put(kb, etcdRevKey(7, 1, false), &mvccpb.KeyValue{Key: []byte("zz"), Value: []byte("sub"), CreateRevision: 7, ModRevision: 7, Version: 1})
		mb := tx.Bucket([]byte("meta"))
		for k, v := range map[string][]byte{
			"finishedCompactRev":  etcdRevKey(3, 0, false),
			"scheduledCompactRev": etcdRevKey(3, 0, false),
			"consistent_index":    binary.BigEndian.AppendUint64(nil, 99),
			"term":                binary.BigEndian.AppendUint64(nil, 4),
			"storageVersion":      []byte("3.6.0"),
		} {
			if err := mb.Put([]byte(k), v); err != nil {
				return err
			}
		}
		var l []byte
		l = protowire.AppendTag(l, 1, protowire.VarintType)
		l = protowire.AppendVarint(l, 0x1234)
		l = protowire.AppendTag(l, 2, protowire.VarintType)
		l = protowire.AppendVarint(l, 600)
		return tx.Bucket([]byte("lease")).Put(binary.BigEndian.AppendUint64(nil, 0x1234), l)
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return writeWithTrailer(t, dir, raw)
}

func rangeAll(t testing.TB, s *mvcc.Store, rev int64) []*mvccpb.KeyValue {
	t.Helper()
	resp, err := s.Range(&pb.RangeRequest{Key: []byte{0}, RangeEnd: []byte{0}, Revision: rev})
	if err != nil {
		t.Fatalf("Range at %d: %v", rev, err)
	}
	return resp.Kvs
}

func sha(b []byte) []byte {
	sum := sha256.Sum256(b)
	return sum[:]
}

// foreignDB is a valid bbolt file with neither layout's buckets.
func foreignDB(t testing.TB) []byte {
	t.Helper()
	p := filepath.Join(t.TempDir(), "other.db")
	db, err := bolt.Open(p, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Update(func(tx *bolt.Tx) error { _, err := tx.CreateBucket([]byte("widgets")); return err }); err != nil {
		t.Fatal(err)
	}
	db.Close()
	raw, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

func rangeReq(rev int64) *pb.RangeRequest {
	return &pb.RangeRequest{Key: []byte{0}, RangeEnd: []byte{0}, Revision: rev}
}
