package snapshot

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"hash/crc32"
	"io"
	"math"
	"strings"
	"unicode/utf8"

	"github.com/cadrekv/cadre/internal/storage/schema"
	bolt "go.etcd.io/bbolt"
	"go.etcd.io/etcd/api/v3/mvccpb"
	"google.golang.org/protobuf/proto"
)

// Status describes a snapshot file as etcdutl's `snapshot status` does;
// the JSON form has etcdutl's field names.
type Status struct {
	Hash      uint32 `json:"hash"`      // crc32c of every bucket name, key and value
	Revision  int64  `json:"revision"`  // newest revision
	TotalKey  int    `json:"totalKey"`  // live keys
	TotalSize int64  `json:"totalSize"` // database bytes (without the trailer)
	Version   string `json:"version"`   // etcd's storage version; empty for Cadre files
	Layout    Layout `json:"-"`
}

// ReadStatus verifies the file (trailer, hash, bbolt integrity, layout) and
// describes it.
func ReadStatus(path string) (Status, error) {
	var st Status
	if _, err := copyVerified(path, io.Discard, false); err != nil {
		return st, err
	}
	db, err := openDB(path)
	if err != nil {
		return st, err
	}
	defer db.Close()
	err = db.View(func(tx *bolt.Tx) error {
		if err := checkDB(tx, path); err != nil {
			return err
		}
		layout, err := detect(tx, path)
		if err != nil {
			return err
		}
		st.Layout, st.TotalSize = layout, tx.Size()
		h := crc32.New(crc32.MakeTable(crc32.Castagnoli))
		if err := tx.ForEach(func(name []byte, b *bolt.Bucket) error {
			h.Write(name)
			return b.ForEach(func(k, v []byte) error {
				h.Write(k)
				h.Write(v)
				return nil
			})
		}); err != nil {
			return err
		}
		st.Hash = h.Sum32()
		if layout == LayoutEtcd {
			if v := tx.Bucket(etcdMeta).Get([]byte("storageVersion")); v != nil {
				st.Version = string(v)
			}
			st.Revision, st.TotalKey, err = countKeys(tx.Bucket(etcdKey), parseEtcdRev)
			return err
		}
		st.Revision, st.TotalKey, err = countKeys(tx.Bucket(cadreKV), parseCadreRev)
		if c := tx.Bucket(cadreMVCC).Get(schema.KeyCompactedRev); len(c) == 8 {
			st.Revision = max(st.Revision, int64(binary.BigEndian.Uint64(c)))
		}
		return err
	})
	return st, err
}

// revKey is one parsed key of a revision-keyed bucket.
type revKey struct {
	main, sub int64
	tomb      bool
}

// parseCadreRev parses Cadre's 16-byte main++sub key, optionally + 't'.
func parseCadreRev(k []byte) (revKey, error) {
	switch {
	case len(k) == 16:
	case len(k) == 17 && k[16] == 't':
	default:
		return revKey{}, fmt.Errorf("%w: bad revision key %x in bucket kv", ErrNotDatabase, k)
	}
	return revKey{int64(binary.BigEndian.Uint64(k)), int64(binary.BigEndian.Uint64(k[8:])), len(k) == 17}, nil
}

// parseEtcdRev parses etcd's 17-byte main ++ '_' ++ sub key, optionally + 't'.
func parseEtcdRev(k []byte) (revKey, error) {
	switch {
	case len(k) == 17 && k[8] == '_':
	case len(k) == 18 && k[8] == '_' && k[17] == 't':
	default:
		return revKey{}, fmt.Errorf("%w: bad revision key %x in etcd bucket key", ErrNotDatabase, k)
	}
	return revKey{int64(binary.BigEndian.Uint64(k)), int64(binary.BigEndian.Uint64(k[9:])), len(k) == 18}, nil
}

// countKeys walks a revision-ordered bucket: the newest revision and the
// number of keys whose last record is not a tombstone.
func countKeys(b *bolt.Bucket, parse func([]byte) (revKey, error)) (rev int64, live int, err error) {
	alive := map[string]struct{}{}
	err = b.ForEach(func(k, v []byte) error {
		r, err := parse(k)
		if err != nil {
			return err
		}
		rev = max(rev, r.main)
		if len(v) == 0 { // etcdutl's --bump-revision marker: no key
			return nil
		}
		var kv mvccpb.KeyValue
		if err := proto.Unmarshal(v, &kv); err != nil {
			return fmt.Errorf("%w: revision %d/%d does not hold a key-value: %v", ErrNotDatabase, r.main, r.sub, err)
		}
		if r.tomb {
			delete(alive, string(kv.Key))
		} else {
			alive[string(kv.Key)] = struct{}{}
		}
		return nil
	})
	return rev, len(alive), err
}

// Write prints st in one of etcdutl's formats: table, json or simple.
func (st Status) Write(w io.Writer, format string) error {
	row := []string{fmt.Sprintf("%x", st.Hash), fmt.Sprint(st.Revision), fmt.Sprint(st.TotalKey), humanBytes(uint64(st.TotalSize)), st.Version}
	switch format {
	case "simple":
		_, err := fmt.Fprintln(w, strings.Join(row, ", "))
		return err
	case "json":
		b, err := json.Marshal(st)
		if err != nil {
			return err
		}
		_, err = fmt.Fprintln(w, string(b))
		return err
	case "table":
		_, err := io.WriteString(w, renderTable([]string{"hash", "revision", "total keys", "total size", "version"}, row))
		return err
	}
	return fmt.Errorf("%w: unknown output format %q; expected table, json or simple", ErrInvalidConfig, format)
}

// renderTable draws one header and one row the way etcdutl's table
// printer does: headers upper-cased and centred, cells right-aligned.
func renderTable(header, row []string) string {
	widths := make([]int, len(header))
	for i := range header {
		header[i] = strings.ToUpper(header[i])
		widths[i] = max(utf8.RuneCountInString(header[i]), utf8.RuneCountInString(row[i]))
	}
	var sb strings.Builder
	border := func(l, m, r string) {
		sb.WriteString(l)
		for i, wd := range widths {
			if i > 0 {
				sb.WriteString(m)
			}
			sb.WriteString(strings.Repeat("─", wd+2))
		}
		sb.WriteString(r + "\n")
	}
	line := func(cells []string, center bool) {
		sb.WriteString("│")
		for i, wd := range widths {
			pad := wd - utf8.RuneCountInString(cells[i])
			left := pad
			if center {
				left = pad / 2
			}
			sb.WriteString(" " + strings.Repeat(" ", left) + cells[i] + strings.Repeat(" ", pad-left) + " │")
		}
		sb.WriteString("\n")
	}
	border("┌", "┬", "┐")
	line(header, true)
	border("├", "┼", "┤")
	line(row, false)
	border("└", "┴", "┘")
	return sb.String()
}

// humanBytes renders a size in SI units as go-humanize's Bytes does.
func humanBytes(n uint64) string {
	if n < 10 {
		return fmt.Sprintf("%d B", n)
	}
	units := [...]string{"B", "kB", "MB", "GB", "TB", "PB", "EB"}
	exp := math.Floor(math.Log(float64(n)) / math.Log(1000))
	val := math.Floor(float64(n)/math.Pow(1000, exp)*10+0.5) / 10
	if val < 10 {
		return fmt.Sprintf("%.1f %s", val, units[int(exp)])
	}
	return fmt.Sprintf("%.0f %s", val, units[int(exp)])
}
