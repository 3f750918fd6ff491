// Package transport carries raft messages and snapshots between Cadre
// members over their peer URLs (http://host:port).
//
// # Message stream
//
// Each member keeps ONE long-lived outbound connection per peer, owned by a
// writer goroutine. The connection starts as an HTTP/1.1 upgrade:
//
//	GET /cadre/peer/v1/stream HTTP/1.1
//	Connection: Upgrade
//	Upgrade: cadre-raft/1
//	X-Cadre-Cluster-ID: <16 hex>
//	X-Cadre-From: <16 hex>   sender member ID
//	X-Cadre-To: <16 hex>     receiver member ID
//
// The receiver answers 412 (cluster or member ID mismatch), 410 (the sender
// was removed from the cluster) or 101 Switching Protocols. After 101 the
// connection carries only sender->receiver frames:
//
//	frame = uvarint(len(msg)) || proto.Marshal(raftpb.Message)
//
// A frame is at most MaxFrameSize bytes; a larger one closes the stream.
// The receiver never writes after 101; the sender reads only to notice that
// the receiver closed the connection. The bytes are protobuf-go's exactly;
// the messages of every write (appends, their responses, heartbeats, votes,
// proposals) are encoded and decoded by hand (codec.go), the rest by
// protobuf-go.
//
// A writer that cannot reach its peer redials with a backoff of 50 ms up
// to 1 s; the peer's own stream arriving cuts the wait short, since the
// peer is then up (a member just started hears from us at once).
//
// # Snapshots
//
//	POST /cadre/peer/v1/snapshot
//	(same identity headers) + X-Cadre-Snapshot-Size: <decimal bytes>
//	body = frame(raftpb.Message MsgSnap, Snapshot.Data empty) || <size> bytes of db
//
// The receiver answers 204 once its SnapshotReceiver has stored the data and
// stepped the message, 400/500 with a short error text otherwise.
//
// # Cluster IDs
//
// A member whose cluster ID is still 0 (a joiner that has not learned it)
// accepts any cluster ID; a member that knows its cluster ID refuses a
// sender that presents another one, including 0.
package transport
