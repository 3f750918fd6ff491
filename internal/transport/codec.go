package transport

import (
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

// A hand-written protobuf codec for the raft messages of the hot path:
// appends, their responses, heartbeats, votes and forwarded proposals.
//
// Why: raftpb's messages are proto2 with a pointer per optional field, and
// protobuf-go decodes them with one allocation per field and per entry
// (about five per entry, nine per small response). A profile of 100-client
// puts put frame decoding at 17% of the leader's allocations. Here a message
// costs a fixed four allocations however many entries it carries, and encoding
// skips protobuf-go's reflective size pass.
//
// Anything outside that subset (a snapshot, responses, an unknown or
// repeated field, an enum value raft does not define, a wrong wire type,
// malformed input) is left to protobuf-go, so the result is always what
// proto.Unmarshal and proto.Marshal give (FuzzCodecMatchesProto checks it).

// Field numbers of raftpb.Message and raftpb.Entry (raft.proto).
const (
	fMsgType       = 1
	fMsgTo         = 2
	fMsgFrom       = 3
	fMsgTerm       = 4
	fMsgLogTerm    = 5
	fMsgIndex      = 6
	fMsgEntries    = 7
	fMsgCommit     = 8
	fMsgSnapshot   = 9
	fMsgReject     = 10
	fMsgRejectHint = 11
	fMsgContext    = 12
	fMsgVote       = 13

	fEntType  = 1
	fEntTerm  = 2
	fEntIndex = 3
	fEntData  = 4
)

// Highest values of raft's (closed, proto2) enums: protobuf-go keeps an
// undefined value as an unknown field, so those go the slow way.
const (
	maxMessageType = int32(raftpb.MsgForgetLeader)
	maxEntryType   = int32(raftpb.EntryConfChangeV2)
)

// fastEncodable reports whether appendMessage writes m exactly as
// proto.Marshal would.
func fastEncodable(m *raftpb.Message) bool {
	if m.Snapshot != nil || len(m.Responses) > 0 || len(m.ProtoReflect().GetUnknown()) > 0 {
		return false
	}
	for _, e := range m.Entries {
		if e == nil || len(e.ProtoReflect().GetUnknown()) > 0 {
			return false
		}
	}
	return true
}

func sizeEnum(v int32) int { return protowire.SizeVarint(uint64(int64(v))) }

func entrySize(e *raftpb.Entry) int {
	n := 0
	if e.Type != nil {
		n += 1 + sizeEnum(int32(*e.Type))
	}
	if e.Term != nil {
		n += 1 + protowire.SizeVarint(*e.Term)
	}
	if e.Index != nil {
		n += 1 + protowire.SizeVarint(*e.Index)
	}
	if e.Data != nil {
		n += 1 + protowire.SizeBytes(len(e.Data))
	}
	return n
}

func sizeU64(p *uint64) int {
	if p == nil {
		return 0
	}
	return 1 + protowire.SizeVarint(*p)
}

// messageSize is the encoded size of a fastEncodable message. Every field
// number is below 16, so every tag is one byte.
func messageSize(m *raftpb.Message) int {
	n := sizeU64(m.To) + sizeU64(m.From) + sizeU64(m.Term) + sizeU64(m.LogTerm) +
		sizeU64(m.Index) + sizeU64(m.Commit) + sizeU64(m.RejectHint) + sizeU64(m.Vote)
	if m.Type != nil {
		n += 1 + sizeEnum(int32(*m.Type))
	}
	for _, e := range m.Entries {
		n += 1 + protowire.SizeBytes(entrySize(e))
	}
	if m.Reject != nil {
		n += 2
	}
	if m.Context != nil {
		n += 1 + protowire.SizeBytes(len(m.Context))
	}
	return n
}

func appendU64(b []byte, num protowire.Number, p *uint64) []byte {
	if p == nil {
		return b
	}
	b = protowire.AppendTag(b, num, protowire.VarintType)
	return protowire.AppendVarint(b, *p)
}

func appendEnum(b []byte, num protowire.Number, v int32) []byte {
	b = protowire.AppendTag(b, num, protowire.VarintType)
	return protowire.AppendVarint(b, uint64(int64(v)))
}

// appendMessage appends a fastEncodable message, fields in number order
// as protobuf-go writes them.
func appendMessage(b []byte, m *raftpb.Message) []byte {
	if m.Type != nil {
		b = appendEnum(b, fMsgType, int32(*m.Type))
	}
	b = appendU64(b, fMsgTo, m.To)
	b = appendU64(b, fMsgFrom, m.From)
	b = appendU64(b, fMsgTerm, m.Term)
	b = appendU64(b, fMsgLogTerm, m.LogTerm)
	b = appendU64(b, fMsgIndex, m.Index)
	for _, e := range m.Entries {
		b = protowire.AppendTag(b, fMsgEntries, protowire.BytesType)
		b = protowire.AppendVarint(b, uint64(entrySize(e)))
		if e.Type != nil {
			b = appendEnum(b, fEntType, int32(*e.Type))
		}
		b = appendU64(b, fEntTerm, e.Term)
		b = appendU64(b, fEntIndex, e.Index)
		if e.Data != nil {
			b = protowire.AppendTag(b, fEntData, protowire.BytesType)
			b = protowire.AppendBytes(b, e.Data)
		}
	}
	b = appendU64(b, fMsgCommit, m.Commit)
	if m.Reject != nil {
		b = protowire.AppendTag(b, fMsgReject, protowire.VarintType)
		b = protowire.AppendVarint(b, protowire.EncodeBool(*m.Reject))
	}
	b = appendU64(b, fMsgRejectHint, m.RejectHint)
	if m.Context != nil {
		b = protowire.AppendTag(b, fMsgContext, protowire.BytesType)
		b = protowire.AppendBytes(b, m.Context)
	}
	b = appendU64(b, fMsgVote, m.Vote)
	return b
}

// decodedMsg is a decoded message with its scalars in one allocation: the
// message's pointer fields point into sc.
type decodedMsg struct {
	m  raftpb.Message
	sc msgScalars
}

type msgScalars struct {
	typ                                                      raftpb.MessageType
	reject                                                   bool
	to, from, term, logTerm, index, commit, rejectHint, vote uint64
}

// decodedEntry is the same for an entry; a message's entries share one
// slab of them.
type decodedEntry struct {
	e           raftpb.Entry
	typ         raftpb.EntryType
	term, index uint64
}

// emptyBytes is the Data of an entry that carries an empty one: present,
// so not nil, as protobuf-go decodes it.
var emptyBytes = []byte{}

// decodeMessage decodes b as proto.Unmarshal would. b is not retained: the
// fast path copies every entry's data into one buffer of the message.
func decodeMessage(b []byte) (*raftpb.Message, error) {
	if m, ok := decodeFast(b); ok {
		return m, nil
	}
	m := &raftpb.Message{}
	if err := proto.Unmarshal(b, m); err != nil {
		return nil, err
	}
	return m, nil
}

// scanEntry checks one encoded entry and returns the length of its data
// (-1 if it has none); ok is false for anything the fast path leaves to
// protobuf-go.
func scanEntry(b []byte) (dataLen int, ok bool) {
	dataLen = -1
	var seen uint8
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 || num > fEntData || seen&(1<<num) != 0 {
			return 0, false
		}
		seen |= 1 << num
		b = b[n:]
		switch {
		case num == fEntData && typ == protowire.BytesType:
			v, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return 0, false
			}
			dataLen, b = len(v), b[n:]
		case num != fEntData && typ == protowire.VarintType:
			v, n := protowire.ConsumeVarint(b)
			if n < 0 || (num == fEntType && (int32(v) < 0 || int32(v) > maxEntryType)) {
				return 0, false
			}
			b = b[n:]
		default:
			return 0, false
		}
	}
	return dataLen, true
}

// decodeFast decodes the subset described above in two passes: the first
// validates and counts entries and data bytes, the second fills slabs
// sized from those counts.
func decodeFast(b []byte) (*raftpb.Message, bool) {
	var seen uint16
	entries, dataBytes := 0, 0
	for rest := b; len(rest) > 0; {
		num, typ, n := protowire.ConsumeTag(rest)
		if n < 0 || num < fMsgType || num > fMsgVote || num == fMsgSnapshot {
			return nil, false
		}
		if num != fMsgEntries {
			if seen&(1<<num) != 0 {
				return nil, false
			}
			seen |= 1 << num
		}
		rest = rest[n:]
		switch num {
		case fMsgEntries, fMsgContext:
			if typ != protowire.BytesType {
				return nil, false
			}
			v, n := protowire.ConsumeBytes(rest)
			if n < 0 {
				return nil, false
			}
			rest = rest[n:]
			if num == fMsgEntries {
				dl, ok := scanEntry(v)
				if !ok {
					return nil, false
				}
				entries++
				dataBytes += max(dl, 0)
			}
		default:
			if typ != protowire.VarintType {
				return nil, false
			}
			v, n := protowire.ConsumeVarint(rest)
			if n < 0 || (num == fMsgType && (int32(v) < 0 || int32(v) > maxMessageType)) {
				return nil, false
			}
			rest = rest[n:]
		}
	}

	dm := &decodedMsg{}
	m, sc := &dm.m, &dm.sc
	var ents []decodedEntry
	var data []byte
	if entries > 0 {
		m.Entries = make([]*raftpb.Entry, 0, entries)
		ents = make([]decodedEntry, entries)
		if dataBytes > 0 {
			data = make([]byte, 0, dataBytes)
		}
	}
	// Pass 1 accepted every tag and length, so pass 2 ignores the counts.
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		b = b[n:]
		if typ == protowire.BytesType {
			v, n := protowire.ConsumeBytes(b)
			b = b[n:]
			if num == fMsgContext {
				m.Context = append(emptyBytes[:0:0], v...)
				continue
			}
			i := len(m.Entries)
			es := &ents[i]
			e := &es.e
			m.Entries = append(m.Entries, e)
			for len(v) > 0 {
				enum, etyp, n := protowire.ConsumeTag(v)
				v = v[n:]
				if etyp == protowire.BytesType {
					d, n := protowire.ConsumeBytes(v)
					v = v[n:]
					if len(d) == 0 {
						e.Data = emptyBytes
						continue
					}
					start := len(data)
					data = append(data, d...)
					e.Data = data[start:len(data):len(data)]
					continue
				}
				x, n := protowire.ConsumeVarint(v)
				v = v[n:]
				switch enum {
				case fEntType:
					es.typ = raftpb.EntryType(int32(x))
					e.Type = &es.typ
				case fEntTerm:
					es.term = x
					e.Term = &es.term
				case fEntIndex:
					es.index = x
					e.Index = &es.index
				}
			}
			continue
		}
		x, n := protowire.ConsumeVarint(b)
		b = b[n:]
		switch num {
		case fMsgType:
			sc.typ = raftpb.MessageType(int32(x))
			m.Type = &sc.typ
		case fMsgTo:
			sc.to = x
			m.To = &sc.to
		case fMsgFrom:
			sc.from = x
			m.From = &sc.from
		case fMsgTerm:
			sc.term = x
			m.Term = &sc.term
		case fMsgLogTerm:
			sc.logTerm = x
			m.LogTerm = &sc.logTerm
		case fMsgIndex:
			sc.index = x
			m.Index = &sc.index
		case fMsgCommit:
			sc.commit = x
			m.Commit = &sc.commit
		case fMsgReject:
			sc.reject = protowire.DecodeBool(x)
			m.Reject = &sc.reject
		case fMsgRejectHint:
			sc.rejectHint = x
			m.RejectHint = &sc.rejectHint
		case fMsgVote:
			sc.vote = x
			m.Vote = &sc.vote
		}
	}
	return m, true
}
