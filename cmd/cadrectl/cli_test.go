package main

import (
	"bytes"
	"os"
	"strings"
	"testing"

	"github.com/spf13/cobra"

	"github.com/cadrekv/cadre/tests/framework"
)

func TestMain(m *testing.M) {
	// main() turns on command abbreviations; the tests run the CLI in-process.
	cobra.EnablePrefixMatching = true
	os.Exit(framework.Main(m))
}

// result is what one CLI invocation produced.
type result struct {
	stdout string
	stderr string
	code   int
}

// runCLI runs cadrectl in-process with the given environment.
func runCLI(env map[string]string, stdin string, args ...string) result {
	var out, errOut bytes.Buffer
	lookup := func(k string) (string, bool) {
		v, ok := env[k]
		return v, ok
	}
	code := newApp(strings.NewReader(stdin), &out, &errOut, lookup).execute(args)
	return result{stdout: out.String(), stderr: errOut.String(), code: code}
}

// TestArgumentErrors covers failures detected before any connection is made,
// so it needs no server: the unreachable endpoint is never dialed.
func TestArgumentErrors(t *testing.T) {
	const ep = "--endpoints=127.0.0.1:1"
	tests := []struct {
		name    string
		env     map[string]string
		args    []string
		code    int
		wantErr string
	}{
		{"get without key", nil, []string{ep, "get"}, exitBadArgs,
			"Error: get command needs one argument as key and an optional argument as range_end\n"},
		{"get prefix and from-key", nil, []string{ep, "get", "a", "--prefix", "--from-key"}, exitBadArgs,
			"Error: `--prefix` and `--from-key` cannot be set at the same time, choose one\n"},
		{"get keys-only and count-only", nil, []string{ep, "get", "a", "--keys-only", "--count-only"}, exitBadArgs,
			"Error: `--keys-only` and `--count-only` cannot be set at the same time, choose one\n"},
		{"get range_end with prefix", nil, []string{ep, "get", "a", "b", "--prefix"}, exitBadArgs,
			"Error: too many arguments, only accept one argument when `--prefix` or `--from-key` is set\n"},
		{"get bad consistency", nil, []string{ep, "get", "a", "--consistency", "x"}, exitBadFeature,
			"Error: unknown consistency flag \"x\"\n"},
		{"get bad order", nil, []string{ep, "get", "a", "--order", "up"}, exitBadFeature, "Error: bad sort order up\n"},
		{"get bad sort target", nil, []string{ep, "get", "a", "--sort-by", "size"}, exitBadFeature, "Error: bad sort target size\n"},
		{"get bad output format", nil, []string{ep, "get", "a", "-w", "yaml"}, exitBadFeature, "Error: unsupported output format\n"},
		{"output format from ETCDCTL_ env", map[string]string{"ETCDCTL_WRITE_OUT": "yaml"}, []string{ep, "get", "a"},
			exitBadFeature, "Error: unsupported output format\n"},
		{"CADRECTL_ env wins over ETCDCTL_", map[string]string{"ETCDCTL_WRITE_OUT": "json", "CADRECTL_WRITE_OUT": "xml"},
			[]string{ep, "get", "a"}, exitBadFeature, "Error: unsupported output format\n"},
		{"flag wins over env", map[string]string{"ETCDCTL_WRITE_OUT": "json"}, []string{ep, "get", "a", "-w", "yaml"},
			exitBadFeature, "Error: unsupported output format\n"},
		{"bad env value", map[string]string{"ETCDCTL_DIAL_TIMEOUT": "soon"}, []string{ep, "get", "a"}, exitBadArgs,
			"Error: invalid value \"soon\" for ETCDCTL_DIAL_TIMEOUT: invalid argument \"soon\" for \"--dial-timeout\" flag: time: invalid duration \"soon\"\n"},
		{"put without args", nil, []string{ep, "put"}, exitBadArgs,
			"Error: put command needs 1 argument and input from stdin or 2 arguments\n"},
		{"put without value or stdin", nil, []string{ep, "put", "k"}, exitBadArgs,
			"Error: put command needs 1 argument and input from stdin or 2 arguments\n"},
		{"put ignore-value with value", nil, []string{ep, "put", "k", "v", "--ignore-value"}, exitBadArgs,
			"Error: put command needs only 1 argument when 'ignore-value' is set\n"},
		{"put bad lease", nil, []string{ep, "put", "k", "v", "--lease", "xyz"}, exitBadArgs,
			"Error: bad lease ID (strconv.ParseInt: parsing \"xyz\": invalid syntax), expecting ID in Hex\n"},
		{"del without key", nil, []string{ep, "del"}, exitBadArgs,
			"Error: del command needs one argument as key and an optional argument as range_end\n"},
		{"del too many args", nil, []string{ep, "del", "a", "b", "c"}, exitBadArgs,
			"Error: del command needs one argument as key and an optional argument as range_end\n"},
		{"txn with args", nil, []string{ep, "txn", "x"}, exitBadArgs, "Error: txn command does not accept argument\n"},
		{"compaction without rev", nil, []string{ep, "compaction"}, exitBadArgs, "Error: compaction command needs 1 argument\n"},
		{"compaction bad rev", nil, []string{ep, "compaction", "ten"}, exitFailure,
			"Error: strconv.ParseInt: parsing \"ten\": invalid syntax\n"},
		{"member list bad consistency", nil, []string{ep, "member", "list", "--consistency", "q"}, exitBadFeature,
			"Error: unknown consistency flag \"q\"\n"},
		{"empty --cert", nil, []string{ep, "--cert=", "get", "a"}, exitBadArgs, "Error: empty string is passed to --cert option\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := runCLI(tt.env, "", tt.args...)
			if r.code != tt.code || r.stderr != tt.wantErr || r.stdout != "" {
				t.Fatalf("got code %d stdout %q stderr %q; want code %d stderr %q", r.code, r.stdout, r.stderr, tt.code, tt.wantErr)
			}
		})
	}
}

func TestParseErrorsPrintUsage(t *testing.T) {
	r := runCLI(nil, "", "get", "--limit", "abc")
	if r.code != exitFailure {
		t.Fatalf("code = %d, want %d", r.code, exitFailure)
	}
	wantPrefix := "Error: invalid argument \"abc\" for \"--limit\" flag: strconv.ParseInt: parsing \"abc\": invalid syntax\nUsage:\n  cadrectl get [options] <key> [range_end] [flags]\n"
	if !strings.HasPrefix(r.stderr, wantPrefix) {
		t.Fatalf("stderr = %q, want prefix %q", r.stderr, wantPrefix)
	}
	if r := runCLI(nil, "", "nosuchcommand"); r.code != exitFailure || !strings.HasPrefix(r.stderr, "Error: unknown command \"nosuchcommand\"") {
		t.Fatalf("unknown command: %+v", r)
	}
}

func TestVersionAndAbbreviation(t *testing.T) {
	want := "cadrectl version: " + cadrectlVersion + "\nAPI version: 3.7\n"
	for _, cmd := range []string{"version", "vers"} {
		if r := runCLI(nil, "", cmd); r.code != 0 || r.stdout != want {
			t.Fatalf("%s: %+v, want stdout %q", cmd, r, want)
		}
	}
}

func TestOptionsListsHiddenGlobalFlags(t *testing.T) {
	r := runCLI(nil, "", "options")
	for _, flag := range []string{"--endpoints strings", "--dial-timeout duration", "--command-timeout duration", "-w, --write-out string", "--hex"} {
		if !strings.Contains(r.stdout, flag) {
			t.Errorf("options output lacks %q:\n%s", flag, r.stdout)
		}
	}
	if help := runCLI(nil, "", "get", "--help"); strings.Contains(help.stdout, "--dial-timeout") {
		t.Errorf("global flags should be hidden from command help:\n%s", help.stdout)
	}
}
