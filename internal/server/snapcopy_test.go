package server

import (
	"bytes"
	"errors"
	"io"
	"os"
	"testing"
	"time"
)

func spoolFile(t *testing.T) *os.File {
	t.Helper()
	f, err := os.CreateTemp(t.TempDir(), "spool-*")
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// The reader gets the first bytes while the copy is still running (the
// writer waits for the reader before it writes the rest), then everything.
func TestSpoolReaderStreamsWhileCopying(t *testing.T) {
	sr := newSpoolReader(spoolFile(t))
	defer sr.Close()
	want := bytes.Repeat([]byte("0123456789abcdef"), 64<<10) // 1 MiB
	firstRead := make(chan struct{})
	go func() {
		w := sr.writer()
		if _, err := w.Write(want[:4096]); err != nil {
			sr.finish(err)
			return
		}
		select {
		case <-firstRead:
		case <-time.After(5 * time.Second):
			sr.finish(errors.New("the reader never read the first chunk"))
			return
		}
		for off := 4096; off < len(want); off += 32 << 10 {
			if _, err := w.Write(want[off:min(off+32<<10, len(want))]); err != nil {
				sr.finish(err)
				return
			}
		}
		sr.finish(nil)
	}()
	buf := make([]byte, 1024)
	n, err := sr.Read(buf)
	if err != nil || n == 0 {
		t.Fatalf("first read: %d bytes, %v", n, err)
	}
	close(firstRead)
	rest, err := io.ReadAll(sr)
	if err != nil {
		t.Fatal(err)
	}
	if got := append(buf[:n], rest...); !bytes.Equal(got, want) {
		t.Fatalf("read %d bytes, not the %d written", len(got), len(want))
	}
}

// A copy that fails is reported after the bytes it wrote.
func TestSpoolReaderReportsCopyError(t *testing.T) {
	sr := newSpoolReader(spoolFile(t))
	defer sr.Close()
	boom := errors.New("disk read failed")
	go func() {
		_, _ = sr.writer().Write([]byte("partial"))
		sr.finish(boom)
	}()
	got, err := io.ReadAll(sr)
	if !errors.Is(err, boom) || string(got) != "partial" {
		t.Fatalf("read %q, %v; want %q then %v", got, err, "partial", boom)
	}
}

// Closing the reader (the transfer gave up) stops the copy at its next write.
func TestSpoolReaderCloseStopsCopy(t *testing.T) {
	sr := newSpoolReader(spoolFile(t))
	w := sr.writer()
	if _, err := w.Write([]byte("a")); err != nil {
		t.Fatal(err)
	}
	sr.Close()
	if _, err := w.Write([]byte("b")); !errors.Is(err, errSpoolClosed) {
		t.Fatalf("write after close: %v, want %v", err, errSpoolClosed)
	}
	if _, err := sr.Read(make([]byte, 1)); !errors.Is(err, errSpoolClosed) {
		t.Fatalf("read after close: %v, want %v", err, errSpoolClosed)
	}
}
