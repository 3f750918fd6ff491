// Package mvcc is Cadre's multi-version key-value state machine: etcd v3
// revision semantics (Range, Put, DeleteRange, Txn, Compact) on a bbolt file,
// operating directly on the etcd wire types. It knows nothing about raft; the
// caller applies each batch of committed entries in one Batch, which is one
// bbolt read-write transaction, and saves the applied raft index in it.
//
// # Revisions
//
// The store starts at revision 1. Every Put, every DeleteRange that deleted
// something, and every Txn whose executed branch wrote something takes the
// next main revision; the writes inside one such operation are ordered by a
// sub revision starting at 0.
//
// # On-disk format (bbolt buckets)
//
//	kv    history of every key, ordered by revision:
//	      key   = 8-byte big-endian main rev ++ 8-byte big-endian sub rev
//	              ++ optional 't' (1 byte) marking a tombstone (deletion)
//	      value = protobuf mvccpb.KeyValue; a tombstone holds only Key and
//	              ModRevision (the deletion revision)
//	mvcc  store bookkeeping, each an 8-byte big-endian integer:
//	      "applied_index", "applied_term" (raft position covered by this file),
//	      "compacted_rev" (history older than it is gone for readers),
//	      "finished_compact_rev" (the compaction whose dropped revisions
//	      are all deleted from kv; see compactor.go)
//	meta  opaque values the server stores with SetMeta (cluster ID,
//	      membership, conf state, ...)
//
// The current revision is not stored: it is the larger of the newest kv
// revision and the compacted revision, recomputed on open together with the
// in-memory index (key -> its revisions), which is rebuilt from a full scan
// of kv. Because kv is revision-ordered, a watcher can replay history from
// any revision >= the compacted revision with one cursor scan.
//
// # Concurrency
//
// Reads run concurrently with an open Batch and see only published state: a
// Batch edits a copy-on-write clone of the index and publishes it, with the
// new revision and applied index, in Commit. Without Options.CommitInterval
// that is after the bbolt commit; with it the bbolt commit may come later
// and cover several batches, and readers find the revisions still in the
// open write transaction in an in-memory overlay (deferred.go).
//
// # Watch
//
// A Batch records one event per write (only while watchers exist). Commit
// hands them to the watcher hub after publishing, so a watcher never sees an
// event a reader cannot. Synced watchers get each batch as one response,
// offered without blocking on their stream's bounded channel; a watcher
// whose stream is full, or that starts in the past, is "unsynced" and is
// caught up by a background loop reading bounded windows of the kv bucket
// (whole revisions only), then rejoins the synced set. Each watcher keeps
// the next revision it has not been offered (minRev), which is what makes
// the switch between history and live events free of gaps and duplicates.
// After ReplaceWith every watcher catches up from the new file; a watcher
// whose history is compacted gets one CompactRevision response, as in etcd.
package mvcc
