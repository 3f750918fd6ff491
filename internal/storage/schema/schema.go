// Package schema is the one owner of Cadre's on-disk backend layout: the
// bbolt bucket names, the keys of the mvcc and meta buckets, and the
// encodings of the records kept there (leases, alarms). The store, the
// apply path, snapshot restore and migration from etcd all read these
// names from here, so a rename or a new record cannot drift between them.
//
// The bbolt file has three buckets:
//
//	kv     every revision of every key: revision key -> mvccpb.KeyValue
//	       (format in internal/storage/mvcc/doc.go)
//	mvcc   applied_index, applied_term, compacted_rev,
//	       finished_compact_rev (uint64 big-endian)
//	meta   the replicated state beside the keys:
//	         membership                 membership.Cluster JSON
//	         autopilot                  membership.Autopilot JSON
//	         audit/<index %016x>        membership.AuditRecord JSON (the trail)
//	         lease/<id %016x>           EncodeLease
//	         alarm/<member %016x>/<n>   one active alarm (value 0x01)
//	         auth/enabled, auth/revision, auth/user/<name>, auth/role/<name>
//	                                    (authpb records, etcd's encoding)
//
// The WAL's metadata record (WALMetadata) is declared here too: with the
// bbolt file it is the whole of a member's on-disk identity.
package schema

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
)

// Buckets.
var (
	BucketKV   = []byte("kv")
	BucketMVCC = []byte("mvcc")
	BucketMeta = []byte("meta")
)

// Keys of the mvcc bucket.
var (
	KeyAppliedIndex = []byte("applied_index")
	KeyAppliedTerm  = []byte("applied_term")
	KeyCompactedRev = []byte("compacted_rev")
	// KeyFinishedCompactRev is the compaction whose old revisions are all
	// deleted from kv; below compacted_rev while that is still under way.
	// Absent in files written before compaction ran in the background
	// (compaction was finished in the same transaction then).
	KeyFinishedCompactRev = []byte("finished_compact_rev")
)

// Keys and prefixes of the meta bucket.
const (
	MetaMembership = "membership"
	MetaAutopilot  = "autopilot" // membership.Autopilot JSON
	AuditPrefix    = "audit/"    // audit/<raft index %016x>: membership.AuditRecord JSON
	LeasePrefix    = "lease/"
	AlarmPrefix    = "alarm/"

	AuthPrefix   = "auth/"
	AuthEnabled  = "auth/enabled"
	AuthRevision = "auth/revision"
	AuthUser     = "auth/user/"
	AuthRole     = "auth/role/"
)

// ErrBadRecord reports a meta record that does not decode.
var ErrBadRecord = errors.New("schema: bad backend record")

// MaxLeaseTTL is the largest TTL a lease may carry, in seconds (etcd's).
const MaxLeaseTTL = 9000000000

// LeaseKey is the meta key of lease id.
func LeaseKey(id int64) string { return fmt.Sprintf("%s%016x", LeasePrefix, uint64(id)) }

// A persisted lease is 25 bytes:
//
//	byte 0       format version, 1
//	bytes 1-8    lease ID, int64 big-endian, non-zero
//	bytes 9-16   granted TTL in seconds, int64 big-endian, 1..MaxLeaseTTL
//	bytes 17-24  checkpointed remaining TTL in seconds, 0 (none)..MaxLeaseTTL
//
// Fixed width and a version byte keep the decoder trivial to validate and
// leave room for a later format.
const (
	leaseVersion    = 1
	leaseEncodedLen = 25
)

// EncodeLease serializes one lease.
func EncodeLease(id, grantedTTL, remainingTTL int64) []byte {
	b := make([]byte, leaseEncodedLen)
	b[0] = leaseVersion
	binary.BigEndian.PutUint64(b[1:], uint64(id))
	binary.BigEndian.PutUint64(b[9:], uint64(grantedTTL))
	binary.BigEndian.PutUint64(b[17:], uint64(remainingTTL))
	return b
}

// DecodeLease parses bytes written by EncodeLease, rejecting anything a
// grant or checkpoint could not have produced.
func DecodeLease(b []byte) (id, grantedTTL, remainingTTL int64, err error) {
	if len(b) != leaseEncodedLen {
		return 0, 0, 0, fmt.Errorf("lease record is %d bytes, expected %d; the backend may be corrupt: %w", len(b), leaseEncodedLen, ErrBadRecord)
	}
	if b[0] != leaseVersion {
		return 0, 0, 0, fmt.Errorf("lease record version %d, expected %d; was the data dir written by a newer Cadre? %w", b[0], leaseVersion, ErrBadRecord)
	}
	id = int64(binary.BigEndian.Uint64(b[1:]))
	grantedTTL = int64(binary.BigEndian.Uint64(b[9:]))
	remainingTTL = int64(binary.BigEndian.Uint64(b[17:]))
	switch {
	case id == 0:
		return 0, 0, 0, fmt.Errorf("lease record has ID 0: %w", ErrBadRecord)
	case grantedTTL < 1 || grantedTTL > MaxLeaseTTL:
		return 0, 0, 0, fmt.Errorf("lease %016x has granted TTL %d, expected 1..%d: %w", uint64(id), grantedTTL, int64(MaxLeaseTTL), ErrBadRecord)
	case remainingTTL < 0 || remainingTTL > MaxLeaseTTL:
		return 0, 0, 0, fmt.Errorf("lease %016x has remaining TTL %d, expected 0..%d: %w", uint64(id), remainingTTL, int64(MaxLeaseTTL), ErrBadRecord)
	}
	return id, grantedTTL, remainingTTL, nil
}

// AlarmKey is the meta key of an active alarm of type t on member.
func AlarmKey(member uint64, t int32) string {
	return fmt.Sprintf("%s%016x/%d", AlarmPrefix, member, t)
}

// AlarmValue is what an active alarm's key holds.
var AlarmValue = []byte{1}

// ParseAlarmKey reverses AlarmKey.
func ParseAlarmKey(k string) (member uint64, t int32, err error) {
	rest, ok := strings.CutPrefix(k, AlarmPrefix)
	if !ok {
		return 0, 0, fmt.Errorf("alarm key %q lacks the %q prefix: %w", k, AlarmPrefix, ErrBadRecord)
	}
	if _, err := fmt.Sscanf(rest, "%016x/%d", &member, &t); err != nil {
		return 0, 0, fmt.Errorf("unreadable alarm record %q: %w", k, ErrBadRecord)
	}
	return member, t, nil
}

// WALMetadata is the WAL's first record, written once when a member's WAL
// is created: it binds the data dir to one member of one cluster for ever.
type WALMetadata struct {
	MemberID  uint64 `json:"memberID"`
	ClusterID uint64 `json:"clusterID"`
	// Incarnation is drawn at random when the data dir is created: the
	// cluster remembers it per member, so the same member ID coming back
	// with a different data dir (wiped, or another one) is recognized.
	// 0 in data dirs created before Cadre recorded it.
	Incarnation uint64 `json:"incarnation,omitempty"`
}

// NewIncarnation draws a data dir's incarnation (never 0).
func NewIncarnation() uint64 {
	for {
		var b [8]byte
		if _, err := rand.Read(b[:]); err != nil {
			panic(fmt.Sprintf("schema: no randomness for an incarnation: %v", err))
		}
		if v := binary.BigEndian.Uint64(b[:]); v != 0 {
			return v
		}
	}
}

// DBPath is where a member keeps its bbolt file: member/snap/db, where etcd
// keeps its own, so etcd's offline tools (`etcdutl defrag --data-dir`) and
// scripts that look there find it.
func DBPath(dataDir string) string { return filepath.Join(dataDir, "member", "snap", "db") }

// LegacyDBPath is where Cadre kept the bbolt file before it moved to
// DBPath; a member found with a file there moves it on start.
func LegacyDBPath(dataDir string) string { return filepath.Join(dataDir, "member", "db") }
