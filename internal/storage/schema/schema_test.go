package schema

import (
	"bytes"
	"errors"
	"testing"
)

func TestLeaseEncodeDecode(t *testing.T) {
	tests := []struct {
		name                  string
		id, granted, remained int64
		wantErr               bool
	}{
		{"plain", 1, 10, 7, false},
		{"no checkpoint", 0x7fffffffffffffff, 60, 0, false},
		{"negative ID", -5, 1, 1, false},
		{"max TTL", 3, MaxLeaseTTL, MaxLeaseTTL, false},
		{"ID 0", 0, 10, 0, true},
		{"granted 0", 1, 0, 0, true},
		{"granted too large", 1, MaxLeaseTTL + 1, 0, true},
		{"negative remaining", 1, 10, -1, true},
		{"remaining too large", 1, 10, MaxLeaseTTL + 1, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id, g, r, err := DecodeLease(EncodeLease(tt.id, tt.granted, tt.remained))
			if tt.wantErr {
				if !errors.Is(err, ErrBadRecord) {
					t.Fatalf("DecodeLease = %v, want ErrBadRecord", err)
				}
				return
			}
			if err != nil || id != tt.id || g != tt.granted || r != tt.remained {
				t.Fatalf("DecodeLease = %d %d %d %v, want %d %d %d", id, g, r, err, tt.id, tt.granted, tt.remained)
			}
		})
	}
	good := EncodeLease(1, 10, 0)
	for name, b := range map[string][]byte{
		"short":       good[:24],
		"long":        append(bytes.Clone(good), 0),
		"new version": append([]byte{2}, good[1:]...),
		"empty":       nil,
	} {
		if _, _, _, err := DecodeLease(b); !errors.Is(err, ErrBadRecord) {
			t.Errorf("%s: DecodeLease = %v, want ErrBadRecord", name, err)
		}
	}
}

func TestAlarmKeyRoundTrip(t *testing.T) {
	k := AlarmKey(0xabcdef0123456789, 2)
	if k != "alarm/abcdef0123456789/2" {
		t.Fatalf("AlarmKey = %q", k)
	}
	m, ty, err := ParseAlarmKey(k)
	if err != nil || m != 0xabcdef0123456789 || ty != 2 {
		t.Fatalf("ParseAlarmKey = %x %d %v", m, ty, err)
	}
	for _, bad := range []string{"alarm/zz/1", "lease/0000000000000001", "alarm/"} {
		if _, _, err := ParseAlarmKey(bad); !errors.Is(err, ErrBadRecord) {
			t.Errorf("ParseAlarmKey(%q) = %v, want ErrBadRecord", bad, err)
		}
	}
}
