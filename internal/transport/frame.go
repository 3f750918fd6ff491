package transport

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

// MaxFrameSize caps one encoded raft message on the wire. raft's
// MaxSizePerMsg keeps normal messages far below it; the cap stops a corrupt
// or hostile length prefix from making the reader allocate without bound.
const MaxFrameSize = 64 << 20

// Errors returned by the frame codec.
var (
	ErrFrameTooLarge = errors.New("transport: frame larger than the 64 MiB limit")
	ErrBadFrame      = errors.New("transport: malformed frame")
)

// appendFrame appends the frame encoding of m to dst, marshalling straight
// into it (no intermediate body): by hand for the messages codec.go knows,
// through protobuf-go for the rest (snapshots, async-storage responses).
func appendFrame(dst []byte, m *raftpb.Message) ([]byte, error) {
	fast := fastEncodable(m)
	var size int
	if fast {
		size = messageSize(m)
	} else {
		size = proto.Size(m)
	}
	if size > MaxFrameSize {
		return dst, fmt.Errorf("%w: %s to %016x is %d bytes", ErrFrameTooLarge, m.GetType(), m.GetTo(), size)
	}
	dst = binary.AppendUvarint(dst, uint64(size))
	if fast {
		return appendMessage(dst, m), nil
	}
	out, err := proto.MarshalOptions{UseCachedSize: true}.MarshalAppend(dst, m)
	if err != nil {
		return dst, fmt.Errorf("transport: marshal %s: %w", m.GetType(), err)
	}
	return out, nil
}

// readFrame reads one frame from r. io.EOF means a clean end between frames.
// scratch, if not nil, is reused for bodies up to 64 KiB: decodeMessage
// copies the bytes it keeps, so the next frame may overwrite it.
func readFrame(r *bufio.Reader, scratch *[]byte) (*raftpb.Message, error) {
	n, err := binary.ReadUvarint(r)
	if err != nil {
		if errors.Is(err, io.EOF) {
			return nil, io.EOF
		}
		if errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, fmt.Errorf("%w: truncated length: %w", ErrBadFrame, err)
		}
		return nil, fmt.Errorf("%w: length: %w", ErrBadFrame, err)
	}
	if n > MaxFrameSize {
		return nil, fmt.Errorf("%w: length prefix says %d bytes", ErrFrameTooLarge, n)
	}
	var body []byte
	if n <= 64<<10 {
		if scratch == nil {
			body = make([]byte, n)
		} else {
			if uint64(cap(*scratch)) < n {
				*scratch = make([]byte, max(n, 4<<10))
			}
			body = (*scratch)[:n]
		}
		if _, err := io.ReadFull(r, body); err != nil {
			return nil, fmt.Errorf("%w: truncated body: %w", ErrBadFrame, err)
		}
	} else {
		// Grow with the data actually received so a lying length prefix
		// cannot reserve 64 MiB up front.
		body, err = io.ReadAll(io.LimitReader(r, int64(n)))
		if err != nil {
			return nil, fmt.Errorf("%w: body: %w", ErrBadFrame, err)
		}
		if uint64(len(body)) != n {
			return nil, fmt.Errorf("%w: truncated body: got %d of %d bytes", ErrBadFrame, len(body), n)
		}
	}
	m, err := decodeMessage(body)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadFrame, err)
	}
	return m, nil
}
