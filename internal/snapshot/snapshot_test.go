package snapshot

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"

	"github.com/cadrekv/cadre/internal/membership"
	"github.com/cadrekv/cadre/internal/storage/mvcc"
	"github.com/cadrekv/cadre/internal/storage/schema"
	"github.com/cadrekv/cadre/internal/storage/wal"
)

func TestStatusCadre(t *testing.T) {
	p := cadreSnapshot(t)
	st, err := ReadStatus(p)
	if err != nil {
		t.Fatal(err)
	}
	fi, _ := os.Stat(p)
	if st.Layout != LayoutCadre || st.Revision != 6 || st.TotalKey != 2 || st.TotalSize != fi.Size()-HashSize || st.Hash == 0 {
		t.Fatalf("status = %+v (file %d bytes); want cadre, revision 6, 2 keys", st, fi.Size())
	}
	var out bytes.Buffer
	if err := st.Write(&out, "json"); err != nil {
		t.Fatal(err)
	}
	var back map[string]any
	if err := json.Unmarshal(out.Bytes(), &back); err != nil || back["revision"] != 6.0 || back["totalKey"] != 2.0 || len(back) != 5 {
		t.Fatalf("json = %s (%v)", out.String(), err)
	}
	out.Reset()
	if err := st.Write(&out, "table"); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 5 || !strings.Contains(lines[1], "TOTAL KEYS") || !strings.HasSuffix(lines[3], "│         │") || !strings.Contains(lines[3], " 6 │") {
		t.Fatalf("table =\n%s", out.String())
	}
	out.Reset()
	if err := st.Write(&out, "simple"); err != nil || !strings.HasSuffix(out.String(), ", 6, 2, 20 kB, \n") {
		t.Fatalf("simple = %q (%v)", out.String(), err)
	}
	if err := st.Write(&out, "yaml"); !errors.Is(err, ErrInvalidConfig) {
		t.Fatalf("yaml format: %v", err)
	}
}

func TestStatusEtcd(t *testing.T) {
	st, err := ReadStatus(etcdSnapshot(t))
	if err != nil {
		t.Fatal(err)
	}
	if st.Layout != LayoutEtcd || st.Revision != 7 || st.TotalKey != 3 || st.Version != "3.6.0" {
		t.Fatalf("status = %+v; want etcd, revision 7, 3 keys, version 3.6.0", st)
	}
}

// Every way a file can be wrong is refused, naming what is wrong.
func TestBadFilesRefused(t *testing.T) {
	good, err := os.ReadFile(cadreSnapshot(t))
	if err != nil {
		t.Fatal(err)
	}
	db := good[:len(good)-HashSize]
	flipped := bytes.Clone(good)
	flipped[5000] ^= 0xff
	for _, tc := range []struct {
		name string
		data []byte
		want error
		text string
	}{
		{"truncated mid-page", good[:len(good)-1000], ErrNoTrailer, "truncated"},
		{"truncated at a page", good[:8192], ErrNoTrailer, "truncated"},
		{"raw db without trailer", db, ErrNoTrailer, "--skip-hash-check"},
		{"flipped byte", flipped, ErrHashMismatch, "corrupt"},
		{"wrong trailer", append(bytes.Clone(db), make([]byte, HashSize)...), ErrHashMismatch, "trailer says"},
		{"empty", nil, ErrNoTrailer, "0 bytes"},
		{"only a trailer", good[len(good)-HashSize:], ErrNoTrailer, "32 bytes"},
		{"not a database", withTrailer(bytes.Repeat([]byte("x"), 4096)), ErrNotDatabase, "not a bbolt"},
		{"foreign layout", withTrailer(foreignDB(t)), ErrUnknownLayout, "expected Cadre's"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "f.db")
			if err := os.WriteFile(p, tc.data, 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := ReadStatus(p)
			if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.text) {
				t.Fatalf("ReadStatus: %v; want %v mentioning %q", err, tc.want, tc.text)
			}
			_, err = Restore(RestoreConfig{SnapshotPath: p, Name: "a", InitialCluster: "a=http://127.0.0.1:1", DataDir: filepath.Join(t.TempDir(), "d")})
			if !errors.Is(err, tc.want) {
				t.Fatalf("Restore: %v; want %v", err, tc.want)
			}
		})
	}
}

func withTrailer(db []byte) []byte {
	return append(bytes.Clone(db), sha(db)...)
}

func TestRestoreCadre(t *testing.T) {
	snap := cadreSnapshot(t)
	initial := "n1=http://127.0.0.1:2380,n2=http://127.0.0.1:2381,n3=http://127.0.0.1:2382"
	wantCID, wantMembers, err := membership.Bootstrap(map[string][]string{
		"n1": {"http://127.0.0.1:2380"}, "n2": {"http://127.0.0.1:2381"}, "n3": {"http://127.0.0.1:2382"}}, "tok")
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "n2.data")
	res, err := Restore(RestoreConfig{SnapshotPath: snap, Name: "n2", InitialCluster: initial, InitialClusterToken: "tok",
		AdvertisePeerURLs: []string{"http://127.0.0.1:2381"}, DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	var self *membership.Member
	for _, m := range wantMembers {
		if m.Name == "n2" {
			self = m
		}
	}
	if res.ClusterID != wantCID || res.MemberID != self.ID || res.Layout != LayoutCadre || res.Revision != 6 {
		t.Fatalf("restored %+v; want cluster %x member %x revision 6", res, wantCID, self.ID)
	}

	s, err := mvcc.Open(schema.DBPath(dir), mvcc.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if idx, term := s.Applied(); idx != 3 || term != 1 {
		t.Fatalf("applied = %d/%d, want 3/1", idx, term)
	}
	kvs := rangeAll(t, s, 0)
	if len(kvs) != 2 || string(kvs[0].Key) != "a" || string(kvs[0].Value) != "2" || kvs[0].ModRevision != 4 || kvs[1].Lease != 7 {
		t.Fatalf("keys = %v", kvs)
	}
	if old := rangeAll(t, s, 3); len(old) != 2 || string(old[1].Key) != "b" {
		t.Fatalf("history at 3 = %v", old)
	}
	raw, _ := s.Meta(schema.MetaMembership)
	cl, err := membership.Unmarshal(raw)
	if err != nil || cl.ID() != wantCID || len(cl.Members()) != 3 || cl.Member(self.ID).Name != "n2" {
		t.Fatalf("membership = %s (%v)", raw, err)
	}
	if alarms, _ := s.MetaWithPrefix(schema.AlarmPrefix); len(alarms) != 0 {
		t.Fatalf("alarms kept: %v", alarms)
	}
	if l, _ := s.Meta("lease/0000000000000007"); !bytes.Equal(l, schema.EncodeLease(7, 60, 30)) {
		t.Fatalf("lease = %x", l)
	}

	w, rep, err := wal.Open(filepath.Join(dir, "member", "wal"), wal.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	var meta schema.WALMetadata
	if err := json.Unmarshal(rep.Metadata, &meta); err != nil || meta.MemberID != self.ID || meta.ClusterID != wantCID {
		t.Fatalf("WAL metadata %s (%v)", rep.Metadata, err)
	}
	if rep.HardState.GetCommit() != 3 || rep.HardState.GetTerm() != 1 || len(rep.Entries) != 3 || rep.Snapshot != nil {
		t.Fatalf("WAL hard state %v, %d entries", rep.HardState, len(rep.Entries))
	}
	for i, e := range rep.Entries {
		var cc raftpb.ConfChange
		if err := proto.Unmarshal(e.GetData(), &cc); err != nil || e.GetType() != raftpb.EntryConfChange || e.GetIndex() != uint64(i+1) || e.GetTerm() != 1 ||
			cc.GetType() != raftpb.ConfChangeAddNode || cc.GetNodeId() != wantMembers[i].ID {
			t.Fatalf("entry %d = %v (%v)", i, e, err)
		}
		var m membership.Member
		if err := json.Unmarshal(cc.GetContext(), &m); err != nil || m.Name != wantMembers[i].Name {
			t.Fatalf("entry %d context %s", i, cc.GetContext())
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "member", "snap")); err != nil {
		t.Fatal(err)
	}
}

func TestRestoreBumpRevision(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "d")
	res, err := Restore(RestoreConfig{SnapshotPath: cadreSnapshot(t), Name: "a", InitialCluster: "a=http://127.0.0.1:1",
		DataDir: dir, BumpRevision: 1000, MarkCompacted: true})
	if err != nil {
		t.Fatal(err)
	}
	if res.Revision != 1006 || res.Compacted != 1006 {
		t.Fatalf("revision %d compacted %d; want 1006 both", res.Revision, res.Compacted)
	}
	s, err := mvcc.Open(schema.DBPath(dir), mvcc.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if kvs := rangeAll(t, s, 0); len(kvs) != 2 {
		t.Fatalf("keys after bump = %v", kvs)
	}
	if _, err := s.Range(rangeReq(5)); !errors.Is(err, mvcc.ErrCompacted) {
		t.Fatalf("range at 5 after bump: %v, want compacted", err)
	}
}

func TestRestoreRefuses(t *testing.T) {
	snap := cadreSnapshot(t)
	full := t.TempDir()
	if err := os.WriteFile(filepath.Join(full, "x"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	base := RestoreConfig{SnapshotPath: snap, Name: "a", InitialCluster: "a=http://127.0.0.1:1,b=http://127.0.0.1:2"}
	for _, tc := range []struct {
		name string
		edit func(c *RestoreConfig)
		want error
		text string
	}{
		{"non-empty data dir", func(c *RestoreConfig) { c.DataDir = full }, ErrDataDirNotEmpty, "already holds"},
		{"name not in cluster", func(c *RestoreConfig) { c.Name = "z" }, ErrInvalidConfig, "not in --initial-cluster"},
		{"advertise mismatch", func(c *RestoreConfig) { c.AdvertisePeerURLs = []string{"http://127.0.0.1:9"} }, ErrInvalidConfig, "does not match"},
		{"bump without mark", func(c *RestoreConfig) { c.BumpRevision = 5 }, ErrInvalidConfig, "--mark-compacted"},
		{"bad cluster", func(c *RestoreConfig) { c.InitialCluster = "a" }, ErrInvalidConfig, "name=peerURL"},
		{"no data dir", func(c *RestoreConfig) {}, ErrInvalidConfig, "--data-dir"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := base
			if tc.name != "no data dir" {
				c.DataDir = filepath.Join(t.TempDir(), "new")
			}
			tc.edit(&c)
			_, err := Restore(c)
			if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.text) {
				t.Fatalf("Restore: %v; want %v mentioning %q", err, tc.want, tc.text)
			}
			if c.DataDir != full && c.DataDir != "" {
				if _, err := os.Stat(c.DataDir); !os.IsNotExist(err) {
					t.Fatalf("data dir %s left behind: %v", c.DataDir, err)
				}
			}
		})
	}
	if ents, _ := os.ReadDir(full); len(ents) != 1 {
		t.Fatalf("refused restore touched the existing data dir: %v", ents)
	}
}

// A failure after the data dir was created removes it again.
func TestRestoreCleansUpOnFailure(t *testing.T) {
	good, err := os.ReadFile(cadreSnapshot(t))
	if err != nil {
		t.Fatal(err)
	}
	good[5000] ^= 1
	p := filepath.Join(t.TempDir(), "bad.db")
	if err := os.WriteFile(p, good, 0o600); err != nil {
		t.Fatal(err)
	}
	existing := t.TempDir()
	if _, err := Restore(RestoreConfig{SnapshotPath: p, Name: "a", InitialCluster: "a=http://127.0.0.1:1", DataDir: existing}); !errors.Is(err, ErrHashMismatch) {
		t.Fatalf("Restore: %v", err)
	}
	if ents, _ := os.ReadDir(existing); len(ents) != 0 {
		t.Fatalf("left behind in the (pre-existing, empty) data dir: %v", ents)
	}
}

func TestRestoreEtcd(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "d")
	res, err := Restore(RestoreConfig{SnapshotPath: etcdSnapshot(t), Name: "a", InitialCluster: "a=http://127.0.0.1:1", DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if res.Layout != LayoutEtcd || res.Revision != 7 || res.Compacted != 3 {
		t.Fatalf("restored %+v; want etcd layout, revision 7, compacted 3", res)
	}
	s, err := mvcc.Open(schema.DBPath(dir), mvcc.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	kvs := rangeAll(t, s, 0)
	type kv struct {
		k, v             string
		create, mod, ver int64
		lease            int64
	}
	want := []kv{{"foo", "v3", 2, 5, 3, 0}, {"lk", "l", 7, 7, 1, 0x1234}, {"zz", "sub", 7, 7, 1, 0}}
	if len(kvs) != len(want) {
		t.Fatalf("keys = %v", kvs)
	}
	for i, w := range want {
		g := kvs[i]
		if string(g.Key) != w.k || string(g.Value) != w.v || g.CreateRevision != w.create || g.ModRevision != w.mod || g.Version != w.ver || g.Lease != w.lease {
			t.Fatalf("key %d = %v, want %+v", i, g, w)
		}
	}
	if at4 := rangeAll(t, s, 4); len(at4) != 2 || string(at4[0].Key) != "bar" || string(at4[1].Value) != "v2" {
		t.Fatalf("history at 4 = %v", at4)
	}
	if _, err := s.Range(rangeReq(2)); !errors.Is(err, mvcc.ErrCompacted) {
		t.Fatalf("range at 2: %v, want compacted", err)
	}
	l, _ := s.Meta("lease/0000000000001234")
	if id, ttl, rem, err := schema.DecodeLease(l); err != nil || id != 0x1234 || ttl != 600 || rem != 600 {
		t.Fatalf("lease = %x (%v)", l, err)
	}
	if idx, _ := s.Applied(); idx != 1 {
		t.Fatalf("applied = %d, want 1", idx)
	}
}

func TestDecodeEtcdLease(t *testing.T) {
	for _, tc := range []struct {
		name    string
		in      []byte
		id, ttl int64
		ok      bool
	}{
		{"id ttl remaining", []byte{0x08, 0x05, 0x10, 0x3c, 0x18, 0x0a}, 5, 60, true},
		{"unknown field skipped", []byte{0x22, 0x01, 0x00, 0x08, 0x05, 0x10, 0x01}, 5, 1, true},
		{"no id", []byte{0x10, 0x3c}, 0, 0, false},
		{"truncated varint", []byte{0x08, 0x85}, 0, 0, false},
	} {
		id, ttl, err := decodeEtcdLease(tc.in)
		if (err == nil) != tc.ok || id != tc.id || ttl != tc.ttl {
			t.Errorf("%s: got %d %d %v", tc.name, id, ttl, err)
		}
	}
}

func FuzzDecodeEtcdLease(f *testing.F) {
	f.Add([]byte{0x08, 0x05, 0x10, 0x3c})
	f.Fuzz(func(t *testing.T, b []byte) {
		id, _, err := decodeEtcdLease(b)
		if err == nil && id == 0 {
			t.Fatal("accepted lease ID 0")
		}
	})
}
