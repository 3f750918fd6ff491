package lease

import (
	"encoding/binary"
	"fmt"
)

// A persisted lease is 25 bytes:
//
//	byte 0       format version, 1
//	bytes 1-8    lease ID, int64 big-endian, non-zero
//	bytes 9-16   granted TTL in seconds, int64 big-endian, 1..MaxTTL
//	bytes 17-24  checkpointed remaining TTL in seconds, 0 (none)..MaxTTL
//
// Fixed width and a version byte keep the decoder trivial to validate and
// leave room for a later format.
const (
	encodingVersion = 1
	encodedLen      = 25
)

// Encode serializes one lease for the backend.
func Encode(id, grantedTTL, remainingTTL int64) []byte {
	b := make([]byte, encodedLen)
	b[0] = encodingVersion
	binary.BigEndian.PutUint64(b[1:], uint64(id))
	binary.BigEndian.PutUint64(b[9:], uint64(grantedTTL))
	binary.BigEndian.PutUint64(b[17:], uint64(remainingTTL))
	return b
}

// Decode parses bytes written by Encode, rejecting anything Grant or
// Checkpoint could not have produced.
func Decode(b []byte) (id, grantedTTL, remainingTTL int64, err error) {
	if len(b) != encodedLen {
		return 0, 0, 0, fmt.Errorf("lease record is %d bytes, expected %d; the backend may be corrupt: %w", len(b), encodedLen, ErrBadEncoding)
	}
	if b[0] != encodingVersion {
		return 0, 0, 0, fmt.Errorf("lease record version %d, expected %d; was the data dir written by a newer Cadre? %w", b[0], encodingVersion, ErrBadEncoding)
	}
	id = int64(binary.BigEndian.Uint64(b[1:]))
	grantedTTL = int64(binary.BigEndian.Uint64(b[9:]))
	remainingTTL = int64(binary.BigEndian.Uint64(b[17:]))
	switch {
	case id == 0:
		return 0, 0, 0, fmt.Errorf("lease record has ID 0: %w", ErrBadEncoding)
	case grantedTTL < 1 || grantedTTL > MaxTTL:
		return 0, 0, 0, fmt.Errorf("lease %016x has granted TTL %d, expected 1..%d: %w", uint64(id), grantedTTL, int64(MaxTTL), ErrBadEncoding)
	case remainingTTL < 0 || remainingTTL > MaxTTL:
		return 0, 0, 0, fmt.Errorf("lease %016x has remaining TTL %d, expected 0..%d: %w", uint64(id), remainingTTL, int64(MaxTTL), ErrBadEncoding)
	}
	return id, grantedTTL, remainingTTL, nil
}
