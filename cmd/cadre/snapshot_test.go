package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestSnapshotCommandErrors(t *testing.T) {
	dir := t.TempDir()
	garbage := filepath.Join(dir, "garbage.db")
	if err := os.WriteFile(garbage, bytes.Repeat([]byte("x"), 1000), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"no subcommand", nil, exitBadConfig, "Usage:"},
		{"unknown subcommand", []string{"frob"}, exitBadConfig, `unknown command "frob"`},
		{"status without file", []string{"status"}, exitBadConfig, "exactly one snapshot file"},
		{"status bad format", []string{"status", garbage, "-w", "yaml"}, exitBadConfig, "--write-out"},
		{"status of garbage", []string{"status", garbage}, exitFailure, "sha256 trailer"},
		{"restore without cluster", []string{"restore", garbage, "--data-dir", filepath.Join(dir, "d")}, exitBadConfig, "--initial-cluster is required"},
		{"restore of garbage", []string{"restore", garbage, "--name", "a", "--initial-cluster", "a=http://127.0.0.1:1", "--data-dir", filepath.Join(dir, "d")}, exitFailure, "truncated"},
		{"restore bump alone", []string{"restore", garbage, "--name", "a", "--initial-cluster", "a=http://127.0.0.1:1", "--data-dir", filepath.Join(dir, "d"), "--bump-revision", "5"}, exitBadConfig, "--mark-compacted"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			code := snapshotCommand(tc.args, &out, &errOut)
			if code != tc.code || !strings.Contains(out.String()+errOut.String(), tc.want) {
				t.Fatalf("code %d, stdout %q, stderr %q; want code %d mentioning %q", code, out.String(), errOut.String(), tc.code, tc.want)
			}
		})
	}
	if _, err := os.Stat(filepath.Join(dir, "d")); !os.IsNotExist(err) {
		t.Fatalf("a refused restore left its data dir: %v", err)
	}
}
