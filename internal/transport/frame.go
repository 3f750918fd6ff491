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

// appendFrame appends the frame encoding of m to dst.
func appendFrame(dst []byte, m *raftpb.Message) ([]byte, error) {
	body, err := proto.Marshal(m)
	if err != nil {
		return dst, fmt.Errorf("transport: marshal %s: %w", m.GetType(), err)
	}
	if len(body) > MaxFrameSize {
		return dst, fmt.Errorf("%w: %s to %016x is %d bytes", ErrFrameTooLarge, m.GetType(), m.GetTo(), len(body))
	}
	dst = binary.AppendUvarint(dst, uint64(len(body)))
	return append(dst, body...), nil
}

// readFrame reads one frame from r. io.EOF means a clean end between frames.
func readFrame(r *bufio.Reader) (*raftpb.Message, error) {
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
		body = make([]byte, n)
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
	m := &raftpb.Message{}
	if err := proto.Unmarshal(body, m); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadFrame, err)
	}
	return m, nil
}
