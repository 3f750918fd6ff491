package snapshot

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/cadrekv/cadre/internal/storage/schema"
	bolt "go.etcd.io/bbolt"
)

// Errors returned by this package; every one is wrapped with the file and
// what to do about it.
var (
	ErrNoTrailer       = errors.New("snapshot: no sha256 trailer")
	ErrHashMismatch    = errors.New("snapshot: sha256 mismatch")
	ErrNotDatabase     = errors.New("snapshot: not a bbolt database")
	ErrUnknownLayout   = errors.New("snapshot: unknown database layout")
	ErrDataDirNotEmpty = errors.New("snapshot: data dir is not empty")
	ErrInvalidConfig   = errors.New("snapshot: invalid restore configuration")
)

// HashSize is the length of the trailer.
const HashSize = sha256.Size

// hasTrailer is etcd's rule: the database is whole pages, and 512 divides
// every page size, so only a file with a trailer leaves 32 bytes over.
func hasTrailer(size int64) bool { return size%512 == HashSize }

// Layout names the database layout inside a snapshot file.
type Layout string

const (
	LayoutCadre Layout = "cadre"
	LayoutEtcd  Layout = "etcd"
)

// copyVerified copies the database part of the snapshot file at path to
// dst while hashing it, then compares the hash with the trailer. It returns
// the size of the database part. With skipHash, a file without a trailer is
// copied whole, and a trailer, if present, is dropped unchecked.
func copyVerified(path string, dst io.Writer, skipHash bool) (int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, fmt.Errorf("snapshot: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return 0, fmt.Errorf("snapshot: %w", err)
	}
	size := st.Size()
	if st.IsDir() {
		return 0, fmt.Errorf("%w: %s is a directory; expected a file written by `snapshot save`", ErrNotDatabase, path)
	}
	dbSize := size
	switch {
	case hasTrailer(size) && size > HashSize:
		dbSize = size - HashSize
	case skipHash:
	default:
		return 0, fmt.Errorf("%w: %s is %d bytes, but a snapshot is a database (a multiple of 512 bytes) followed by a 32-byte sha256; "+
			"the file is truncated or was not written by `snapshot save` — take the snapshot again "+
			"(a raw copy of member/db can be restored with --skip-hash-check)", ErrNoTrailer, path, size)
	}
	h := sha256.New()
	if _, err := io.Copy(io.MultiWriter(h, dst), io.LimitReader(f, dbSize)); err != nil {
		return 0, fmt.Errorf("snapshot: copy %s: %w", path, err)
	}
	if skipHash || dbSize == size {
		return dbSize, nil
	}
	want := make([]byte, HashSize)
	if _, err := io.ReadFull(f, want); err != nil {
		return 0, fmt.Errorf("snapshot: read trailer of %s: %w", path, err)
	}
	if got := h.Sum(nil); !bytes.Equal(got, want) {
		return 0, fmt.Errorf("%w: %s is corrupt: the sha256 of its first %d bytes is %x but its trailer says %x; take the snapshot again",
			ErrHashMismatch, path, dbSize, got, want)
	}
	return dbSize, nil
}

// openDB opens a bbolt file read-only. A snapshot file may carry the
// trailer: bbolt ignores bytes past its last page.
func openDB(path string) (*bolt.DB, error) {
	db, err := bolt.Open(path, 0o400, &bolt.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v; expected a file written by `snapshot save`", ErrNotDatabase, path, err)
	}
	return db, nil
}

// checkDB runs bbolt's consistency check over every page.
func checkDB(tx *bolt.Tx, path string) error {
	var errs []error
	for err := range tx.Check() {
		errs = append(errs, err)
		if len(errs) == 10 {
			break
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("%w: %s fails the database integrity check: %w", ErrNotDatabase, path, errors.Join(errs...))
	}
	return nil
}

// Buckets of the two layouts.
var (
	cadreKV   = schema.BucketKV
	cadreMVCC = schema.BucketMVCC
	cadreMeta = schema.BucketMeta

	etcdKey   = []byte("key")
	etcdMeta  = []byte("meta")
	etcdLease = []byte("lease")
)

// detect tells the layouts apart by their buckets.
func detect(tx *bolt.Tx, path string) (Layout, error) {
	has := func(name []byte) bool { return tx.Bucket(name) != nil }
	switch {
	case has(cadreKV) && has(cadreMVCC) && has(cadreMeta):
		return LayoutCadre, nil
	case has(etcdKey) && has(etcdMeta):
		return LayoutEtcd, nil
	}
	var names []string
	_ = tx.ForEach(func(name []byte, _ *bolt.Bucket) error {
		names = append(names, string(name))
		return nil
	})
	return "", fmt.Errorf("%w: %s has buckets %q; expected Cadre's (kv, mvcc, meta) or etcd's (key, meta, ...)", ErrUnknownLayout, path, names)
}
