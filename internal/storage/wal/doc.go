// Package wal is Cadre's write-ahead log: the durable copy of the raft log,
// HardState and snapshot metadata of one member. It is not etcd's WAL
// format and cannot read etcd data directories.
//
// # Segments
//
// A WAL directory holds segment files named
//
//	<seq>-<first>.wal     e.g. 0000000000000003-00000000000004d2.wal
//
// where seq (0, 1, 2, ...) is the segment's sequence number and first the
// raft index the log expected next when the segment was started, both 16
// lowercase hex digits, so lexical order is replay order. first is a hint
// for operators; raft truncation may later write lower indexes into it.
// Sequence numbers of the files present must be consecutive.
//
// A segment is created under the name <name>.tmp, preallocated to
// Options.SegmentSize (fallocate; the unused tail reads as zeros), filled
// with its first batch, fsynced, renamed into place, and the directory is
// fsynced. A segment therefore never appears half written, and Open deletes
// leftover .tmp files. A batch larger than the remaining space goes to a new
// segment; a batch larger than a whole segment grows the file past
// SegmentSize.
//
// The first batch of every segment starts with header records: metadata,
// the latest HardState and, if one was saved, the latest snapshot record.
// Any suffix of the segment sequence therefore replays on its own.
//
// # Records
//
// A segment is a sequence of records, each starting at a multiple of 8:
//
//	offset  size  field
//	0       4     CRC-32C (Castagnoli), little endian, of bytes 4..16+L
//	                (the rest of the header and the payload)
//	4       4     L, payload length in bytes, little endian, at most 64 MiB
//	8       1     type in bits 0-6; bit 7 (0x80) marks the last record of a write
//	9       7     batch number, 56-bit little endian, >= 1
//	16      L     payload
//	16+L    P     zero padding, P = (8 - L%8) % 8
//
// Types: 1 metadata (the raw bytes given to Create), 2 raftpb.HardState,
// 3 raftpb.SnapshotMetadata, 4 raftpb.Entry; 2-4 are protobuf encoded. The
// record stream ends at the first all-zero 16-byte header (or EOF).
//
// # Batches
//
// Each call that writes (Create, Save, SaveSnapshot, and a segment cut
// together with the batch that caused it) is one pwrite followed by one
// fdatasync, and all its records share a batch number; the last carries the
// 0x80 flag. Batch numbers grow strictly across the whole log. Save writes
// entries before the HardState. Replay applies a batch only when its flagged
// last record has been read, so a Save is all or nothing. Exception to the
// fdatasync: a Save that only moves the commit index (no entries, same term
// and vote) is written without one, as in etcd; raft relearns a lost commit
// index from the leader, and the next synced batch makes it durable too.
//
// # Torn tail versus corruption
//
// In the last segment, everything after the last complete batch is the
// unacknowledged tail of a write that may have been torn by a crash (a
// short file, a record with a bad CRC, bad length or padding, a batch
// missing its last record, zeros in the middle of the write). Open zeroes
// that tail (truncate, preallocate again, fsync) and logs a warning naming
// file and offset, unless a record with a valid CRC and a batch number
// greater than (last complete batch + 1) lies anywhere after it: that record
// was written after the damaged one was acknowledged, so the damage is
// corruption. Corruption is also: any defect in a segment that is not the
// last (they were fsynced before their successor existed), including
// non-zero bytes after its end; records out of batch order; a segment not
// starting with metadata, or with metadata unlike the first segment's; a
// payload that does not decode; entries that leave an index gap or go back
// to or below the snapshot index; a snapshot index going backwards; and
// surviving entries that do not start right after the latest snapshot.
// Open reports corruption as a *CorruptError naming file and offset; it
// never repairs it. Damage to the very last acknowledged batch cannot be
// told from a torn write and is repaired, losing that batch.
//
// # Replay rules
//
// Records apply in file order. An entry whose index is already present
// replaces it and drops every entry after it (raft log truncation); else it
// must be the next index. A snapshot record drops the entries at or below
// its index. The first entry of a replay may start anywhere above the
// snapshot index because older segments may have been released; the
// survivors must then start at snapshot index + 1.
//
// # Release
//
// ReleaseTo(i) caps i at (latest snapshot index + 1) and deletes, oldest
// first and with a directory fsync after each, the segments that are not
// the last and whose highest entry index is below i. The last segment is
// never deleted, and every later segment carries the metadata, HardState
// and snapshot of its time in its header, so Open still replays the latest
// of each and every entry after the snapshot.
package wal
