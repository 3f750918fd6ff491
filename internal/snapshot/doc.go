// Package snapshot reads, checks and restores snapshot files: the files
// `etcdctl snapshot save` and `cadrectl snapshot save` write from a
// member's Maintenance.Snapshot stream.
//
// # File format (the same as etcd's)
//
//	bytes 0 .. n-1    a consistent copy of the member's bbolt database
//	                  (a whole number of pages, so n is a multiple of 512)
//	bytes n .. n+31   sha256 of bytes 0 .. n-1
//
// A file whose size is not 32 more than a multiple of 512 has no trailer:
// it is truncated, or it is a raw copy of member/db (restore accepts such a
// copy with SkipHashCheck, as etcdutl's --skip-hash-check).
//
// # Database layouts
//
// The database is either Cadre's (buckets kv, mvcc, meta; see
// internal/storage/mvcc/doc.go) or etcd's 3.5+ (buckets key, meta, lease,
// members, ...). A member's Maintenance.Snapshot streams etcd's layout
// (export.go), so etcdutl and etcd read what `snapshot save` writes; raw
// copies of member/db and older Cadre files have Cadre's. Restore keeps a
// Cadre file as it is, and converts an etcd file into Cadre's layout (see
// etcd.go), keeping every revision, the compacted revision, the leases and
// auth.
//
// # Restore
//
// Restore builds the data dir of one member of a NEW cluster: member/db
// holds the data with the new membership in its meta bucket and an applied
// index of n (the number of members); member/wal starts with the n
// configuration changes that add the members (indexes 1..n, term 1, as
// raft.StartNode writes them) and a HardState committing them. A restarting
// member replays those entries to raft (which learns its voters) but skips
// them for the backend, which already holds their effect.
package snapshot
