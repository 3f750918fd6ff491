package wal

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"strconv"

	"google.golang.org/protobuf/proto"
)

// Record framing; doc.go describes it byte by byte.
const (
	headerSize = 16
	recAlign   = 8
	maxPayload = 64 << 20 // largest payload a record may carry
	maxBatch   = 1<<56 - 1
)

type recordType byte

const (
	recMetadata  recordType = 1
	recHardState recordType = 2
	recSnapshot  recordType = 3
	recEntry     recordType = 4

	flagEnd byte = 0x80 // set on the last record of one write
)

// castagnoli is a read-only lookup table.
var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// zeroBlock is read-only; it backs padding and the all-zero checks.
var zeroBlock [4096]byte

func validType(t recordType) bool { return t >= recMetadata && t <= recEntry }

func padLen(n int) int { return (recAlign - n%recAlign) % recAlign }

// appendProto appends one record holding m to buf. The header is reserved
// first and filled after marshaling so the payload is encoded in place.
func appendProto(buf []byte, t recordType, batch uint64, end bool, m proto.Message) ([]byte, error) {
	start := len(buf)
	buf = append(buf, zeroBlock[:headerSize]...)
	out, err := proto.MarshalOptions{}.MarshalAppend(buf, m)
	if err != nil {
		return buf[:start], fmt.Errorf("%w: marshal %T: %v", ErrInvalid, m, err)
	}
	return finishRecord(out, start, t, batch, end)
}

// appendBytes appends one record holding p to buf.
func appendBytes(buf []byte, t recordType, batch uint64, end bool, p []byte) ([]byte, error) {
	start := len(buf)
	buf = append(buf, zeroBlock[:headerSize]...)
	buf = append(buf, p...)
	return finishRecord(buf, start, t, batch, end)
}

func finishRecord(buf []byte, start int, t recordType, batch uint64, end bool) ([]byte, error) {
	n := len(buf) - start - headerSize
	if n > maxPayload {
		return buf[:start], fmt.Errorf("%w: record payload is %d bytes, the limit is %d; keep entries smaller", ErrInvalid, n, maxPayload)
	}
	h := buf[start : start+headerSize]
	tb := byte(t)
	if end {
		tb |= flagEnd
	}
	binary.LittleEndian.PutUint32(h[4:8], uint32(n))
	binary.LittleEndian.PutUint64(h[8:16], (batch&maxBatch)<<8|uint64(tb))
	binary.LittleEndian.PutUint32(h[0:4], crc32.Checksum(buf[start+4:], castagnoli))
	return append(buf, zeroBlock[:padLen(n)]...), nil
}

// record is one decoded record; payload aliases the segment buffer.
type record struct {
	typ     recordType
	end     bool
	batch   uint64
	off     int64 // start of the record in its file
	size    int   // header + payload + padding
	payload []byte
}

// parseRecord decodes the record starting at data[off]. An all-zero header
// (or all-zero bytes up to EOF) is the end of records: size 0, reason "".
// Any other problem is described by reason. It never allocates based on
// the length field: the payload is a sub-slice of data after bounds checks.
func parseRecord(data []byte, off int) (rec record, reason string) {
	rest := data[off:]
	if len(rest) < headerSize {
		if allZero(rest) {
			return record{off: int64(off)}, ""
		}
		return record{}, "truncated record header"
	}
	h := rest[:headerSize]
	if allZero(h) {
		return record{off: int64(off)}, ""
	}
	n := binary.LittleEndian.Uint32(h[4:8])
	word := binary.LittleEndian.Uint64(h[8:16])
	tb := byte(word)
	rec = record{
		typ:   recordType(tb &^ flagEnd),
		end:   tb&flagEnd != 0,
		batch: word >> 8,
		off:   int64(off),
	}
	switch {
	case n > maxPayload:
		return record{}, "record length " + strconv.FormatUint(uint64(n), 10) + " exceeds the 64 MiB limit"
	case int64(n) > int64(len(rest)-headerSize):
		return record{}, "record length " + strconv.FormatUint(uint64(n), 10) + " runs past the end of the file"
	case !validType(rec.typ):
		return record{}, "unknown record type " + strconv.Itoa(int(tb))
	case rec.batch == 0:
		return record{}, "record has batch number 0"
	}
	body := rest[4 : headerSize+int(n)]
	if crc32.Checksum(body, castagnoli) != binary.LittleEndian.Uint32(h[0:4]) {
		return record{}, "crc mismatch"
	}
	size := headerSize + int(n) + padLen(int(n))
	if size > len(rest) {
		return record{}, "record padding runs past the end of the file"
	}
	if !allZero(rest[headerSize+int(n) : size]) {
		return record{}, "non-zero record padding"
	}
	rec.size = size
	rec.payload = rest[headerSize : headerSize+int(n)]
	return rec, ""
}

func allZero(b []byte) bool {
	for len(b) > 0 {
		n := min(len(b), len(zeroBlock))
		if !bytes.Equal(b[:n], zeroBlock[:n]) {
			return false
		}
		b = b[n:]
	}
	return true
}

// Segment files are named <seq>-<first index>.wal, both 16 lowercase hex
// digits, so a lexical sort is the replay order.
const (
	segSuffix  = ".wal"
	tmpSuffix  = ".wal.tmp"
	segNameLen = 16 + 1 + 16 + len(segSuffix)
)

func segmentName(seq, first uint64) string {
	return fmt.Sprintf("%016x-%016x%s", seq, first, segSuffix)
}

func parseSegmentName(name string) (seq, first uint64, ok bool) {
	if len(name) != segNameLen || name[16] != '-' || name[33:] != segSuffix {
		return 0, 0, false
	}
	seq, ok1 := parseHex16(name[:16])
	first, ok2 := parseHex16(name[17:33])
	return seq, first, ok1 && ok2
}

func parseHex16(s string) (uint64, bool) {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return 0, false
		}
	}
	v, err := strconv.ParseUint(s, 16, 64)
	return v, err == nil
}
