package mvcc

import (
	"encoding/binary"
	"fmt"

	"go.etcd.io/etcd/api/v3/mvccpb"
	"google.golang.org/protobuf/encoding/protowire"
)

const (
	revKeyLen  = 16  // main ++ sub, both big-endian so bbolt orders by revision
	tombMarker = 't' // trailing byte on a kv key that records a deletion
)

// revision orders every write: main is the store revision, sub orders the
// writes inside one revision (one Txn can write several keys).
type revision struct {
	main, sub int64
}

func (a revision) less(b revision) bool {
	return a.main < b.main || (a.main == b.main && a.sub < b.sub)
}

// appendRevKey appends the kv bucket key of r (and the tombstone marker).
func appendRevKey(dst []byte, r revision, tomb bool) []byte {
	dst = binary.BigEndian.AppendUint64(dst, uint64(r.main))
	dst = binary.BigEndian.AppendUint64(dst, uint64(r.sub))
	if tomb {
		dst = append(dst, tombMarker)
	}
	return dst
}

// parseRevKey is the inverse of appendRevKey.
func parseRevKey(k []byte) (r revision, tomb bool, err error) {
	switch {
	case len(k) == revKeyLen:
	case len(k) == revKeyLen+1 && k[revKeyLen] == tombMarker:
		tomb = true
	default:
		return revision{}, false, fmt.Errorf("%w: bad revision key %x (want 16 bytes, optionally followed by 't')", ErrCorrupt, k)
	}
	r.main = int64(binary.BigEndian.Uint64(k[:8]))
	r.sub = int64(binary.BigEndian.Uint64(k[8:16]))
	return r, tomb, nil
}

// appendKV appends the protobuf encoding of a KeyValue. It is byte-for-byte
// what proto.Marshal produces (fields in number order, zero values omitted)
// but needs no reflection and no allocation, which matters on the write path.
func appendKV(dst, key []byte, create, mod, ver int64, value []byte, lease int64) []byte {
	if len(key) > 0 {
		dst = protowire.AppendTag(dst, 1, protowire.BytesType)
		dst = protowire.AppendBytes(dst, key)
	}
	dst = appendVarintField(dst, 2, create)
	dst = appendVarintField(dst, 3, mod)
	dst = appendVarintField(dst, 4, ver)
	if len(value) > 0 {
		dst = protowire.AppendTag(dst, 5, protowire.BytesType)
		dst = protowire.AppendBytes(dst, value)
	}
	return appendVarintField(dst, 6, lease)
}

func appendVarintField(dst []byte, num protowire.Number, v int64) []byte {
	if v == 0 {
		return dst
	}
	dst = protowire.AppendTag(dst, num, protowire.VarintType)
	return protowire.AppendVarint(dst, uint64(v))
}

// decodeKV decodes a KeyValue written by appendKV (or any protobuf encoder),
// copying Key and Value out of buf, which is bbolt memory valid only for the
// transaction. Key and Value share one allocation. Without withValue the
// value is skipped (keys-only reads).
func decodeKV(buf []byte, withValue bool) (*mvccpb.KeyValue, error) {
	kv := &mvccpb.KeyValue{}
	var key, val []byte
	for b := buf; len(b) > 0; {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return nil, fmt.Errorf("%w: bad KeyValue tag: %v", ErrCorrupt, protowire.ParseError(n))
		}
		b = b[n:]
		switch {
		case (num == 1 || num == 5) && typ == protowire.BytesType:
			v, m := protowire.ConsumeBytes(b)
			if m < 0 {
				return nil, fmt.Errorf("%w: bad KeyValue field %d: %v", ErrCorrupt, num, protowire.ParseError(m))
			}
			if num == 1 {
				key = v
			} else {
				val = v
			}
			n = m
		case num >= 2 && num <= 6 && num != 5 && typ == protowire.VarintType:
			v, m := protowire.ConsumeVarint(b)
			if m < 0 {
				return nil, fmt.Errorf("%w: bad KeyValue field %d: %v", ErrCorrupt, num, protowire.ParseError(m))
			}
			switch num {
			case 2:
				kv.CreateRevision = int64(v)
			case 3:
				kv.ModRevision = int64(v)
			case 4:
				kv.Version = int64(v)
			case 6:
				kv.Lease = int64(v)
			}
			n = m
		default:
			// Unknown or mistyped field: skip it, as protobuf decoders do.
			n = protowire.ConsumeFieldValue(num, typ, b)
			if n < 0 {
				return nil, fmt.Errorf("%w: bad KeyValue field %d: %v", ErrCorrupt, num, protowire.ParseError(n))
			}
		}
		b = b[n:]
	}
	if !withValue {
		val = nil
	}
	if len(key)+len(val) > 0 {
		both := make([]byte, len(key)+len(val))
		copy(both, key)
		copy(both[len(key):], val)
		if len(key) > 0 {
			kv.Key = both[:len(key):len(key)]
		}
		if len(val) > 0 {
			kv.Value = both[len(key):]
		}
	}
	return kv, nil
}
