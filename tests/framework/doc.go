// Package framework runs Cadre (or any server that takes etcd's flags, such
// as the real etcd) as real processes on 127.0.0.1 for end-to-end tests.
//
// The server under test is built from ./cmd/cadre of this module once per
// test binary, unless CADRE_E2E_SERVER names a binary to use instead. That
// switch lets every scenario be validated against the real etcd: a scenario
// that fails against etcd is a wrong test, not a Cadre bug.
//
// The real etcdctl v3.7.3 comes from ETCDCTL_BIN or is built once from the
// Go module proxy into a cache directory (see Etcdctl).
//
// Everything here is Linux-only (flock, Pdeathsig) and binds only loopback.
package framework
