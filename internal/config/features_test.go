package config

import (
	"errors"
	"strings"
	"testing"
)

func TestFeatureGates(t *testing.T) {
	tests := []struct {
		name      string
		args, env []string
		wantCheck bool
		wantErr   string // substring; "" = no error
		wantWarn  string // substring of some warning; "" = none expected
	}{
		{name: "none", wantCheck: true},
		{name: "etcd's e2e default", args: []string{"--feature-gates=InitialCorruptCheck=true"}, wantCheck: true},
		{name: "check off through the gate", args: []string{"--feature-gates", "InitialCorruptCheck=false"}, wantCheck: false},
		{name: "from ETCD_FEATURE_GATES", env: []string{"ETCD_FEATURE_GATES=InitialCorruptCheck=false"}, wantCheck: false},
		{name: "several, with spaces", args: []string{"--feature-gates= LeaseCheckpoint=true , CompactHashCheck=true"}, wantCheck: true, wantWarn: "CompactHashCheck=true is accepted"},
		{name: "always-on gate switched off", args: []string{"--feature-gates=LeaseCheckpoint=false"}, wantCheck: true, wantWarn: "LeaseCheckpoint=false is ignored"},
		{name: "unknown gate", args: []string{"--feature-gates=NoSuchGate=true"}, wantErr: `unrecognized feature gate "NoSuchGate"`},
		{name: "not a bool", args: []string{"--feature-gates=InitialCorruptCheck=yes please"}, wantErr: "is not Name=true|false"},
		{name: "no value", args: []string{"--feature-gates=InitialCorruptCheck"}, wantErr: "is not Name=true|false"},
		{name: "contradicts the flag", args: []string{"--initial-corrupt-check=true", "--feature-gates=InitialCorruptCheck=false"}, wantErr: "contradicts --initial-corrupt-check"},
		{name: "agrees with the flag", args: []string{"--initial-corrupt-check=false", "--feature-gates=InitialCorruptCheck=false"}, wantCheck: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, warns, err := Parse(tt.args, tt.env)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !errors.Is(err, ErrInvalid) {
					t.Fatalf("Parse = %v, want an invalid-config error containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.InitialCorruptCheck != tt.wantCheck {
				t.Fatalf("InitialCorruptCheck = %v, want %v", c.InitialCorruptCheck, tt.wantCheck)
			}
			joined := strings.Join(warns, "\n")
			if (tt.wantWarn == "") != (joined == "") || !strings.Contains(joined, tt.wantWarn) {
				t.Fatalf("warnings %q, want one containing %q", warns, tt.wantWarn)
			}
		})
	}
}
