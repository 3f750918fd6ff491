package mvcc

import (
	"bytes"
	"testing"

	"go.etcd.io/etcd/api/v3/mvccpb"
	"google.golang.org/protobuf/proto"
)

func TestKVCodecMatchesProtobuf(t *testing.T) {
	tests := []*mvccpb.KeyValue{
		{},
		{Key: []byte("k")},
		{Key: []byte("k"), ModRevision: 9}, // tombstone shape
		{Key: []byte("key"), CreateRevision: 2, ModRevision: 300, Version: 1 << 40, Value: []byte("value"), Lease: -1},
		{Key: bytes.Repeat([]byte{0xff}, 300), Value: bytes.Repeat([]byte{0}, 70000), Lease: 1<<63 - 1},
	}
	for _, want := range tests {
		enc := appendKV(nil, want.Key, want.CreateRevision, want.ModRevision, want.Version, want.Value, want.Lease)
		ref, err := proto.MarshalOptions{Deterministic: true}.Marshal(want)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(enc, ref) {
			t.Fatalf("appendKV(%v) = %x, proto.Marshal = %x", want, enc, ref)
		}
		got, err := decodeKV(enc, true)
		if err != nil {
			t.Fatal(err)
		}
		if !proto.Equal(got, want) {
			t.Fatalf("decodeKV = %v, want %v", got, want)
		}
		got, err = decodeKV(enc, false)
		if err != nil || got.Value != nil || !bytes.Equal(got.Key, want.Key) || got.Version != want.Version {
			t.Fatalf("decodeKV without value = %v, %v", got, err)
		}
	}
}

func TestRevKey(t *testing.T) {
	for _, tc := range []struct {
		r    revision
		tomb bool
	}{{revision{1, 0}, false}, {revision{1 << 50, 7}, true}} {
		k := appendRevKey(nil, tc.r, tc.tomb)
		r, tomb, err := parseRevKey(k)
		if err != nil || r != tc.r || tomb != tc.tomb {
			t.Fatalf("round trip %v/%v = %v/%v, %v", tc.r, tc.tomb, r, tomb, err)
		}
	}
	// Byte order is revision order, which kv scans rely on.
	a, b := appendRevKey(nil, revision{2, 9}, true), appendRevKey(nil, revision{3, 0}, false)
	if bytes.Compare(a, b) >= 0 || !(revision{2, 9}).less(revision{3, 0}) {
		t.Fatal("revision keys not ordered by revision")
	}
	for _, bad := range [][]byte{nil, make([]byte, 15), append(make([]byte, 16), 'x'), make([]byte, 18)} {
		if _, _, err := parseRevKey(bad); err == nil {
			t.Fatalf("parseRevKey(%x) accepted", bad)
		}
	}
}

// FuzzDecodeKV checks the hand-written decoder against protobuf on bytes
// read from disk: it must never panic, and agree whenever protobuf accepts.
func FuzzDecodeKV(f *testing.F) {
	f.Add(appendKV(nil, []byte("k"), 1, 2, 3, []byte("v"), 4))
	f.Add([]byte{0x0a, 0xff})
	f.Add([]byte{0x38, 0x01, 0x0a, 0x01, 'k'})
	f.Fuzz(func(t *testing.T, data []byte) {
		got, err := decodeKV(data, true)
		var want mvccpb.KeyValue
		perr := proto.Unmarshal(data, &want)
		if perr != nil {
			return
		}
		if err != nil {
			t.Fatalf("decodeKV rejected %x that protobuf accepts: %v", data, err)
		}
		want.ProtoReflect().SetUnknown(nil)
		if !proto.Equal(got, &want) {
			t.Fatalf("decodeKV(%x) = %v, protobuf = %v", data, got, &want)
		}
	})
}
