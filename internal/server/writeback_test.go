package server

import (
	"bytes"
	"io"
	"testing"
)

// TestWritebackWriterCoversEveryChunk: the bytes pass through unchanged and
// writeback is started for consecutive ranges of writebackEvery bytes or
// more, in order, whatever the sizes of the writes; the tail shorter than
// that is left to the fsync.
func TestWritebackWriterCoversEveryChunk(t *testing.T) {
	var dst bytes.Buffer
	type span struct{ off, n int64 }
	var got []span
	w := &writebackWriter{w: &dst, writeback: func(off, n int64) { got = append(got, span{off, n}) }}
	src := bytes.Repeat([]byte("0123456789abcdef"), 7*writebackEvery/2/16)
	// Odd-sized reads, as from a network stream.
	r := io.LimitReader(bytes.NewReader(src), int64(len(src)))
	buf := make([]byte, 100003)
	if _, err := io.CopyBuffer(w, r, buf); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(dst.Bytes(), src) {
		t.Fatal("bytes changed on the way through")
	}
	var next int64
	for _, s := range got {
		if s.off != next || s.n < writebackEvery {
			t.Fatalf("writeback ranges %v: not consecutive chunks of at least %d bytes", got, writebackEvery)
		}
		next = s.off + s.n
	}
	if len(got) != 3 || int64(len(src))-next >= writebackEvery {
		t.Fatalf("writeback ranges %v for %d bytes: want 3, leaving a tail under %d", got, len(src), writebackEvery)
	}
}
