package apply

import (
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"google.golang.org/protobuf/proto"

	"github.com/cadrekv/cadre/internal/auth"
	"github.com/cadrekv/cadre/internal/lease"
	"github.com/cadrekv/cadre/internal/membership"
)

// Backend is the storage the applier writes through (mvcc.Store).
type Backend interface {
	Begin() (Batch, error)
	// Applied is the raft position the backend holds.
	Applied() (index, term uint64)
	Meta(key string) ([]byte, error)
	MetaWithPrefix(prefix string) (map[string][]byte, error)
	// KeysWithLease lists the live keys that carry a lease (recovery only).
	KeysWithLease() (map[int64][][]byte, error)
}

// Batch is one backend transaction covering a batch of entries
// (mvcc.Batch).
type Batch interface {
	Put(*pb.PutRequest) (*pb.PutResponse, error)
	DeleteRange(*pb.DeleteRangeRequest) (*pb.DeleteRangeResponse, error)
	DeleteKeys(keys [][]byte) (int64, error)
	Txn(*pb.TxnRequest) (*pb.TxnResponse, error)
	Compact(rev int64) (*pb.CompactionResponse, error)
	SetMeta(key string, value []byte)
	// Meta reads a meta value as this batch sees it (nil if absent).
	Meta(key string) []byte
	// MetaKeys lists the meta keys with a prefix, in order.
	MetaKeys(prefix string) []string
	SetApplied(index, term uint64)
	OnWrite(func(key []byte, lease int64, tomb bool))
	Sync()
	Commit() error
	Abort()
}

// Lessor keeps the leases and their keys (lease.Lessor).
type Lessor interface {
	Grant(id, ttl int64) (lease.Info, error)
	Revoke(id int64) ([][]byte, error)
	Checkpoint(id, remaining int64) error
	Attach(id int64, key []byte) error
	Detach(id int64, key []byte)
	LeaseOf(key []byte) int64
	Exists(id int64) bool
	Granted(id int64) (int64, bool)
	Recover([]lease.Info)
}

// Auth is the auth state (auth.Store).
type Auth interface {
	Apply(m auth.Meta, r *pb.InternalRaftRequest) (proto.Message, error)
	Load(meta map[string][]byte) error
	Enabled() bool
	Revision() uint64
}

// Members is the membership (membership.Cluster).
type Members interface {
	Apply(membership.ConfChange) error
	SetAttributes(id uint64, name string, clientURLs []string) error
	SetIncarnation(id, incarnation uint64) error
	Marshal() []byte
	ReplaceWith(*membership.Cluster)
	Members() []*membership.Member
}
