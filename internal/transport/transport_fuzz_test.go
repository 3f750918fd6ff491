package transport

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"testing"

	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

// FuzzReadFrame feeds arbitrary bytes to the stream decoder: it must never
// panic, must classify every failure, and whatever it decodes must survive
// an encode/decode round trip.
func FuzzReadFrame(f *testing.F) {
	for _, m := range []*raftpb.Message{{}, msg(1, 2, 3), snapMsg(1, 2, 4)} {
		b, _ := appendFrame(nil, m)
		f.Add(b)
		f.Add(b[:len(b)/2])
	}
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0x7f})
	f.Add([]byte{0x80, 0x80, 0x80, 0x40})
	f.Fuzz(func(t *testing.T, data []byte) {
		r := bufio.NewReader(bytes.NewReader(data))
		for range 16 {
			m, err := readFrame(r, nil)
			if err != nil {
				if err != io.EOF && !errors.Is(err, ErrBadFrame) && !errors.Is(err, ErrFrameTooLarge) {
					t.Fatalf("unclassified error: %v", err)
				}
				return
			}
			b, err := appendFrame(nil, m)
			if err != nil {
				t.Fatalf("re-encode: %v", err)
			}
			again, err := readFrame(bufio.NewReader(bytes.NewReader(b)), nil)
			if err != nil || !proto.Equal(m, again) {
				t.Fatalf("round trip: %v, %v != %v", err, again, m)
			}
		}
	})
}
