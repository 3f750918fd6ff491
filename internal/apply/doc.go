// Package apply is Cadre's state machine: the one place that turns
// committed raft entries into state (keys, leases, auth, alarms,
// membership, compaction).
//
// It is deterministic by construction. Its only inputs are the entries and
// the state it starts from, read back from the backend: no clock, no local
// flag (limits a rule needs travel in the entry, e.g. the learner limit of
// a member add), no map-order dependence (a lease's keys are deleted in
// sorted order), and no branch on whether this member leads. Two members
// that apply the same entries from the same state therefore end with the
// same state, however the entries were cut into batches, whether they came
// by log replay or after a snapshot, and whether the backend commit was
// deferred. The determinism harness in this package's tests checks exactly
// that, over random histories of every request kind.
//
// The applier reaches storage, the lessor, auth and membership through the
// small interfaces declared in deps.go; the server owns the lifecycle (the
// apply goroutine, waking proposers, telling raft about conf changes,
// peers) and knows nothing of how an entry is applied.
//
// What is applied where:
//
//	Put, DeleteRange, Txn, Compaction   mvcc batch (one revision per request)
//	LeaseGrant, LeaseCheckpoint         lessor + lease record in the meta bucket
//	LeaseRevoke                         lessor; its keys deleted at ONE revision
//	                                    (sub-revisions in key order), as etcd
//	Auth*, Authenticate                 auth store (+ meta), token hook
//	Alarm                               alarm set (+ meta)
//	ClusterMemberAttrSet, ConfChange    membership (+ meta "membership")
//
// A lease's attached keys are kept by the lessor and updated by every write
// the batch makes (mvcc.Batch.OnWrite), so a revoke in the same batch as
// the puts that attached its keys finds them, and costs O(its keys), not
// O(keyspace).
package apply
