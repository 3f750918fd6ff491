package transport

import (
	"bytes"
	"fmt"
	"testing"

	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

func u64(v uint64) *uint64 { return &v }

func entries(n, size int) []*raftpb.Entry {
	out := make([]*raftpb.Entry, n)
	for i := range out {
		out[i] = &raftpb.Entry{Term: u64(3), Index: u64(uint64(100 + i)), Data: bytes.Repeat([]byte{byte(i)}, size)}
	}
	return out
}

// hotMessages are the shapes raft sends on every write: the codec must take
// its fast path for all of them.
func hotMessages() map[string]*raftpb.Message {
	return map[string]*raftpb.Message{
		"empty":  {},
		"MsgApp": {Type: raftpb.MsgApp.Enum(), To: u64(2), From: u64(1), Term: u64(3), LogTerm: u64(3), Index: u64(99), Commit: u64(98), Entries: entries(5, 300)},
		"MsgApp conf change and empty entries": {Type: raftpb.MsgApp.Enum(), To: u64(2), From: u64(1), Entries: []*raftpb.Entry{
			{Type: raftpb.EntryConfChange.Enum(), Term: u64(1), Index: u64(7), Data: []byte{1, 2}},
			{Type: raftpb.EntryNormal.Enum(), Term: u64(1), Index: u64(8), Data: []byte{}},
			{Term: u64(1), Index: u64(9)},
		}},
		"MsgAppResp reject":          {Type: raftpb.MsgAppResp.Enum(), To: u64(1), From: u64(2), Term: u64(3), Index: u64(99), Reject: proto.Bool(true), RejectHint: u64(50), LogTerm: u64(2)},
		"MsgAppResp":                 {Type: raftpb.MsgAppResp.Enum(), To: u64(1), From: u64(2), Term: u64(3), Index: u64(1 << 40), Reject: proto.Bool(false)},
		"MsgHeartbeat":               {Type: raftpb.MsgHeartbeat.Enum(), To: u64(2), From: u64(1), Term: u64(3), Commit: u64(98), Context: []byte("read-1")},
		"MsgHeartbeat empty context": {Type: raftpb.MsgHeartbeat.Enum(), To: u64(2), From: u64(1), Context: []byte{}},
		"MsgVote":                    {Type: raftpb.MsgVote.Enum(), To: u64(2), From: u64(1), Term: u64(4), LogTerm: u64(3), Index: u64(99), Vote: u64(0)},
		"MsgProp forwarded":          {Type: raftpb.MsgProp.Enum(), To: u64(1), From: u64(2), Entries: []*raftpb.Entry{{Data: []byte("put")}, {Data: []byte("put2")}}},
		"MsgReadIndex":               {Type: raftpb.MsgReadIndex.Enum(), To: u64(1), From: u64(3), Entries: []*raftpb.Entry{{Data: []byte{0, 0, 0, 0, 0, 0, 0, 9}}}},
		"MsgForgetLeader":            {Type: raftpb.MsgForgetLeader.Enum()},
		"max values":                 {Type: raftpb.MsgApp.Enum(), To: u64(^uint64(0)), Term: u64(^uint64(0)), Entries: []*raftpb.Entry{{Index: u64(^uint64(0))}}},
	}
}

func marshalRef(t testing.TB, m *raftpb.Message) []byte {
	t.Helper()
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(m)
	if err != nil {
		t.Fatalf("proto.Marshal: %v", err)
	}
	return b
}

// TestCodecMatchesProto: for every hot message the hand-written encoder
// writes protobuf-go's exact bytes, and the fast decoder reads them back to
// a message equal to the original, with its presence bits (nil against
// empty Data/Context) intact.
func TestCodecMatchesProto(t *testing.T) {
	for name, m := range hotMessages() {
		t.Run(name, func(t *testing.T) {
			want := marshalRef(t, m)
			if !fastEncodable(m) {
				t.Fatal("a hot message must take the fast encoder")
			}
			if got := appendMessage(nil, m); !bytes.Equal(got, want) {
				t.Fatalf("encoding differs from protobuf-go:\n got %x\nwant %x", got, want)
			}
			if n := messageSize(m); n != len(want) {
				t.Fatalf("messageSize = %d, encoding is %d bytes", n, len(want))
			}
			got, ok := decodeFast(want)
			if !ok {
				t.Fatal("a hot message must take the fast decoder")
			}
			if !proto.Equal(got, m) || !bytes.Equal(marshalRef(t, got), want) {
				t.Fatalf("decoded %v, want %v", got, m)
			}
			for i, e := range got.GetEntries() {
				if (e.Data == nil) != (m.Entries[i].Data == nil) {
					t.Fatalf("entry %d: Data nil=%v, sent nil=%v", i, e.Data == nil, m.Entries[i].Data == nil)
				}
			}
			if (got.Context == nil) != (m.Context == nil) {
				t.Fatalf("Context nil=%v, sent nil=%v", got.Context == nil, m.Context == nil)
			}
		})
	}
}

// TestCodecLeavesTheRestToProto: what the fast path does not know goes to
// protobuf-go, whose result (unknown fields and all) is kept.
func TestCodecLeavesTheRestToProto(t *testing.T) {
	snap := snapMsg(1, 2, 7)
	withResp := &raftpb.Message{Type: raftpb.MsgStorageAppend.Enum(), Responses: []*raftpb.Message{{Type: raftpb.MsgAppResp.Enum(), To: u64(1)}}}
	for _, m := range []*raftpb.Message{snap, withResp} {
		if fastEncodable(m) {
			t.Fatalf("%s: must go through protobuf-go", m.GetType())
		}
		b := marshalRef(t, m)
		if _, ok := decodeFast(b); ok {
			t.Fatalf("%s: the fast decoder must refuse it", m.GetType())
		}
		got, err := decodeMessage(b)
		if err != nil || !proto.Equal(got, m) {
			t.Fatalf("%s: decoded %v, %v", m.GetType(), got, err)
		}
	}
	// An unknown field (99, varint 1) after a valid message, and an enum
	// value raft does not define (type 200), are kept the way protobuf-go
	// keeps them.
	base := marshalRef(t, &raftpb.Message{Type: raftpb.MsgApp.Enum(), To: u64(2)})
	for name, b := range map[string][]byte{
		"unknown field":   append(append([]byte{}, base...), 0x98, 0x06, 0x01),
		"undefined enum":  {0x08, 0xc8, 0x01, 0x10, 0x02},
		"repeated scalar": append(append([]byte{}, base...), 0x10, 0x05),
	} {
		if _, ok := decodeFast(b); ok {
			t.Fatalf("%s: the fast decoder must refuse it", name)
		}
		var ref raftpb.Message
		if err := proto.Unmarshal(b, &ref); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		got, err := decodeMessage(b)
		if err != nil || !proto.Equal(got, &ref) {
			t.Fatalf("%s: decoded %v, %v; protobuf-go gives %v", name, got, err, &ref)
		}
	}
}

// TestDecodeAllocationsDoNotGrowWithEntries is why the codec exists:
// protobuf-go spends about five allocations per entry.
func TestDecodeAllocationsDoNotGrowWithEntries(t *testing.T) {
	for _, tc := range []struct {
		m   *raftpb.Message
		max float64
	}{
		{&raftpb.Message{Type: raftpb.MsgAppResp.Enum(), To: u64(1), From: u64(2), Term: u64(3), Index: u64(99)}, 1},
		{&raftpb.Message{Type: raftpb.MsgApp.Enum(), To: u64(2), Entries: entries(1, 300)}, 4},
		{&raftpb.Message{Type: raftpb.MsgApp.Enum(), To: u64(2), Entries: entries(64, 300)}, 4},
	} {
		b := marshalRef(t, tc.m)
		n := testing.AllocsPerRun(100, func() {
			if _, err := decodeMessage(b); err != nil {
				t.Fatal(err)
			}
		})
		if n > tc.max {
			t.Errorf("%s with %d entries: %.0f allocations, want at most %.0f", tc.m.GetType(), len(tc.m.Entries), n, tc.max)
		}
	}
}

// FuzzCodecMatchesProto: on any input the decoder agrees with
// proto.Unmarshal (same error or not, equal messages, same re-encoding), and
// on whatever decodes the fast encoder writes protobuf-go's bytes.
func FuzzCodecMatchesProto(f *testing.F) {
	for _, m := range hotMessages() {
		b := marshalRef(f, m)
		f.Add(b)
		f.Add(b[:len(b)/2])
	}
	f.Add(marshalRef(f, snapMsg(1, 2, 3)))
	f.Add([]byte{0x3a, 0x02, 0x20, 0x00})             // an entry with empty data
	f.Add([]byte{0x3a, 0x04, 0x20, 0x00, 0x20, 0x00}) // an entry with data twice
	f.Fuzz(func(t *testing.T, b []byte) {
		var ref raftpb.Message
		refErr := proto.Unmarshal(b, &ref)
		got, err := decodeMessage(b)
		if (err == nil) != (refErr == nil) {
			t.Fatalf("decodeMessage error %v, proto.Unmarshal error %v", err, refErr)
		}
		if err != nil {
			return
		}
		if !proto.Equal(got, &ref) {
			t.Fatalf("decoded %v, proto.Unmarshal gives %v", got, &ref)
		}
		want := marshalRef(t, &ref)
		if again := marshalRef(t, got); !bytes.Equal(again, want) {
			t.Fatalf("re-encoding differs:\n got %x\nwant %x", again, want)
		}
		if fastEncodable(got) {
			if enc := appendMessage(nil, got); !bytes.Equal(enc, want) {
				t.Fatalf("fast encoding differs:\n got %x\nwant %x (%s)", enc, want, fmt.Sprint(got))
			}
		}
	})
}
