package lease

import (
	"bytes"
	"errors"
	"testing"
)

func TestEncodeDecode(t *testing.T) {
	tests := []struct {
		name                  string
		id, granted, remained int64
		wantErr               bool
	}{
		{"plain", 1, 10, 7, false},
		{"no checkpoint", 0x7fffffffffffffff, 60, 0, false},
		{"negative ID", -5, 1, 1, false},
		{"max TTL", 3, MaxTTL, MaxTTL, false},
		{"ID 0", 0, 10, 0, true},
		{"granted 0", 1, 0, 0, true},
		{"granted too large", 1, MaxTTL + 1, 0, true},
		{"negative remaining", 1, 10, -1, true},
		{"remaining too large", 1, 10, MaxTTL + 1, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := Encode(tt.id, tt.granted, tt.remained)
			id, g, r, err := Decode(b)
			if tt.wantErr {
				if !errors.Is(err, ErrBadEncoding) {
					t.Fatalf("Decode = %d %d %d, %v; want ErrBadEncoding", id, g, r, err)
				}
				return
			}
			if err != nil || id != tt.id || g != tt.granted || r != tt.remained {
				t.Fatalf("Decode(Encode(%d, %d, %d)) = %d %d %d, %v", tt.id, tt.granted, tt.remained, id, g, r, err)
			}
		})
	}
}

func TestDecodeRejects(t *testing.T) {
	good := Encode(1, 10, 5)
	badVersion := bytes.Clone(good)
	badVersion[0] = 2
	for name, b := range map[string][]byte{
		"nil":         nil,
		"short":       good[:24],
		"long":        append(bytes.Clone(good), 0),
		"bad version": badVersion,
	} {
		if _, _, _, err := Decode(b); !errors.Is(err, ErrBadEncoding) {
			t.Errorf("%s: Decode error %v, want ErrBadEncoding", name, err)
		}
	}
}

func FuzzDecode(f *testing.F) {
	f.Add(Encode(1, 10, 5))
	f.Add(Encode(-1, MaxTTL, 0))
	f.Add([]byte{})
	f.Add([]byte{1, 2, 3})
	f.Fuzz(func(t *testing.T, b []byte) {
		id, g, r, err := Decode(b)
		if err != nil {
			if !errors.Is(err, ErrBadEncoding) {
				t.Fatalf("error %v does not wrap ErrBadEncoding", err)
			}
			return
		}
		if id == 0 || g < 1 || g > MaxTTL || r < 0 || r > MaxTTL {
			t.Fatalf("accepted out-of-range lease %d %d %d", id, g, r)
		}
		if !bytes.Equal(Encode(id, g, r), b) {
			t.Fatalf("Encode(Decode(%x)) differs", b)
		}
	})
}
