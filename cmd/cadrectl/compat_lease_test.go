package main

// Lease and lock cases for TestCompatWithEtcdctl: commands that end by
// themselves, compared like every other case. Streaming commands are in
// compat_stream_test.go.

import (
	"context"
	"fmt"
	"net"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// requireService skips the test when the server answers Unimplemented for
// the Lease or Watch service (Cadre before issue 4 landed). Any other
// failure of the probe fails the test.
func requireService(t *testing.T, cli *clientv3.Client, service string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	var err error
	switch service {
	case "Lease":
		_, err = cli.Leases(ctx)
	case "Watch":
		// An unimplemented Watch ends the stream with that code; a served
		// one answers "created" at once.
		resp, ok := <-cli.Watch(ctx, "\x00probe", clientv3.WithCreatedNotify())
		switch {
		case !ok:
			err = fmt.Errorf("watch channel closed without a response: %w", ctx.Err())
		case resp.Err() != nil:
			err = resp.Err()
		case !resp.Created:
			err = fmt.Errorf("first watch response is not the creation: %+v", resp)
		}
	default:
		t.Fatalf("unknown service %q", service)
	}
	if status.Code(err) == codes.Unimplemented {
		t.Skipf("the server does not implement the %s service yet (%v)", service, err)
	}
	if err != nil {
		t.Fatalf("probing the %s service: %v", service, err)
	}
}

// revokeAll revokes every lease, so lease list shows only a case's own.
func revokeAll(t *testing.T, cli *clientv3.Client) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	resp, err := cli.Leases(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range resp.Leases {
		if _, err := cli.Revoke(ctx, l.ID); err != nil && !strings.Contains(err.Error(), "not found") {
			t.Fatal(err)
		}
	}
}

func grant(t *testing.T, cli *clientv3.Client, ttl int64) clientv3.LeaseID {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	resp, err := cli.Grant(ctx, ttl)
	if err != nil {
		t.Fatal(err)
	}
	return resp.ID
}

var (
	leaseHex      = regexp.MustCompile(`(?m)(^|lease |/)[0-9a-f]{8,16}\b`)
	leaseDecimal  = regexp.MustCompile(`("(?:ID|id|lease)":|"(?:ID|Lease)" : )[0-9a-f]+`)
	jsonKey       = regexp.MustCompile(`"key":"[^"]*"`)
	remainingTTL  = regexp.MustCompile(`(remaining\(|"ttl":|"TTL" : )\d+`)
	lockRevisions = regexp.MustCompile(`(ETCD_LOCK_REV=)\d+`)
)

// maskLeases hides lease IDs (random; unpadded in session keys) and
// revisions.
func maskLeases(s string) string {
	s = leaseHex.ReplaceAllString(s, "${1}<ID>")
	s = leaseDecimal.ReplaceAllString(s, "${1}N")
	s = lockRevisions.ReplaceAllString(s, "${1}N")
	return maskRevisions(s)
}

// maskSessionKeys also hides the keys of lock and election owners, which
// end in a lease ID, in JSON (base64).
func maskSessionKeys(s string) string {
	return jsonKey.ReplaceAllString(maskLeases(s), `"key":K`)
}

// maskTTL also hides the remaining TTL, which ticks.
func maskTTL(s string) string {
	return remainingTTL.ReplaceAllString(maskLeases(s), "${1}N")
}

func (s *compatServer) leaseCases(t *testing.T) []compatCase {
	needLease := func(t *testing.T, cli *clientv3.Client) []string {
		requireService(t, cli, "Lease")
		return nil
	}
	// withLease grants a fresh lease (with one key attached when key is
	// set) and appends its ID.
	withLease := func(key string) prepareFunc {
		return func(t *testing.T, cli *clientv3.Client) []string {
			requireService(t, cli, "Lease")
			id := grant(t, cli, 100)
			if key != "" {
				mustDo(t, cli, clientv3.OpPut(key, "v", clientv3.WithLease(id)))
			}
			return []string{strconv.FormatInt(int64(id), 16)}
		}
	}
	twoLeases := func(t *testing.T, cli *clientv3.Client) []string {
		requireService(t, cli, "Lease")
		revokeAll(t, cli)
		grant(t, cli, 100)
		grant(t, cli, 200)
		return nil
	}

	var cases []compatCase
	add := func(prepare prepareFunc, norm func(string) string, args ...string) {
		cases = append(cases, compatCase{name: strings.Join(args, " "), args: args, prepare: prepare, norm: norm})
	}
	for _, f := range []string{"simple", "json", "fields", "table", "protobuf"} {
		ttlNorm := maskTTL
		if f == "protobuf" { // the header's revision is binary in it: compare the length
			ttlNorm = func(s string) string { return strconv.Itoa(len(s)) }
		}
		add(needLease, maskLeases, "lease", "grant", "60", "-w", f)
		add(withLease("lk1"), ttlNorm, "lease", "timetolive", "-w", f)
		add(withLease("lk1"), ttlNorm, "lease", "timetolive", "--keys", "-w", f)
		add(twoLeases, maskLeases, "lease", "list", "-w", f)
		add(withLease(""), maskLeases, "lease", "keep-alive", "--once", "-w", f)
		if f != "protobuf" { // its error names a pointer
			add(withLease("lk1"), maskLeases, "lease", "revoke", "-w", f)
		}
	}
	add(needLease, maskLeases, "lease", "grant", "60", "--hex", "-w", "fields")
	add(withLease(""), maskLeases, "lease", "keep-alive", "--once", "--hex", "-w", "fields")
	add(twoLeases, maskLeases, "lease", "list", "--hex", "-w", "fields")
	add(withLease("lk1"), maskTTL, "lease", "timetolive", "--keys", "--hex", "-w", "fields")
	add(needLease, nil, "lease", "timetolive", "1234")
	add(needLease, maskRevisions, "lease", "timetolive", "1234", "-w", "json")
	add(needLease, nil, "lease", "revoke", "1234")
	add(needLease, nil, "lease", "keep-alive", "--once", "1234")
	// A lease that does not exist: the stream ends at once.
	add(needLease, nil, "lease", "keep-alive", "1234")
	for _, args := range [][]string{
		{"lease", "grant"}, {"lease", "grant", "x"}, {"lease", "revoke"}, {"lease", "revoke", "zz"},
		{"lease", "timetolive"}, {"lease", "timetolive", "zz"}, {"lease", "keep-alive"}, {"lease", "keep-alive", "--once", "zz"},
		{"lock"}, {"elect"}, {"elect", "e1"}, {"elect", "-l", "e1", "p"},
	} {
		add(nil, nil, args...)
	}

	// lock with a command: the command's output only, its exit code.
	needLock := func(t *testing.T, cli *clientv3.Client) []string {
		requireService(t, cli, "Lease")
		requireService(t, cli, "Watch")
		return nil
	}
	add(needLock, nil, "lock", "mylock", "echo", "hi")
	add(needLock, maskLeases, "lock", "--ttl", "5", "mylock", "--", "sh", "-c", `echo "ETCD_LOCK_KEY=$ETCD_LOCK_KEY ETCD_LOCK_REV=$ETCD_LOCK_REV"; exit 3`)
	add(needLock, nil, "lock", "mylock", "/nonexistent/command")
	return cases
}

// TestRequireServiceSkipsUnimplemented checks the skip that keeps CI green
// on a server without Lease or Watch: a gRPC server with no services
// answers Unimplemented to both.
func TestRequireServiceSkipsUnimplemented(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(srv.Stop)
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{l.Addr().String()}, DialTimeout: 2 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	for _, svc := range []string{"Lease", "Watch"} {
		skipped := false
		t.Run(svc, func(t *testing.T) {
			defer func() { skipped = t.Skipped() }()
			requireService(t, cli, svc)
		})
		if !skipped {
			t.Errorf("%s: not skipped on a server without the service", svc)
		}
	}
}
