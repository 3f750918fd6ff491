package transport

import (
	"bufio"
	"bytes"
	"testing"

	"go.etcd.io/raft/v3/raftpb"
)

// BenchmarkFrameRoundTrip encodes and decodes a typical MsgApp (one
// 300-byte entry): the per-message cost of the peer stream on each side.
func BenchmarkFrameRoundTrip(b *testing.B) {
	m := &raftpb.Message{Type: raftpb.MsgApp.Enum(), To: new(uint64(2)), From: new(uint64(1)), Term: new(uint64(3)), Index: new(uint64(1000)), LogTerm: new(uint64(3)), Commit: new(uint64(999)),
		Entries: []*raftpb.Entry{{Term: new(uint64(3)), Index: new(uint64(1001)), Data: bytes.Repeat([]byte("x"), 300)}}}
	var buf []byte
	var wire bytes.Buffer
	r := bufio.NewReader(&wire)
	var scratch []byte
	b.ReportAllocs()
	for b.Loop() {
		var err error
		buf, err = appendFrame(buf[:0], m)
		if err != nil {
			b.Fatal(err)
		}
		wire.Write(buf)
		got, err := readFrame(r, &scratch)
		if err != nil || len(got.GetEntries()) != 1 {
			b.Fatal(err)
		}
	}
}
