package mvcc

import (
	"bytes"
	"sort"

	"github.com/google/btree"
)

// revEntry is one write of a key as the index remembers it.
type revEntry struct {
	revision
	tomb bool
}

// keyIndex is the in-memory history of one key: every write still kept in
// the kv bucket, oldest first, plus the state of its newest generation so
// writes and compares need no bbolt read.
//
// A keyIndex reachable from a published tree is immutable; a Batch clones it
// (copy-on-write, tracked by gen) before changing it.
type keyIndex struct {
	key    []byte
	revs   []revEntry
	create int64  // create revision of the live generation; 0 when deleted
	ver    int64  // version of the live generation; 0 when deleted
	gen    uint64 // Batch generation that owns (may mutate) this keyIndex
}

func lessKeyIndex(a, b *keyIndex) bool { return bytes.Compare(a.key, b.key) < 0 }

type index = btree.BTreeG[*keyIndex]

func newIndex() *index { return btree.NewG(32, lessKeyIndex) }

// live reports whether the key exists at the newest revision.
func (ki *keyIndex) live() bool { return ki.ver > 0 }

// last is the newest write; keyIndexes in a tree always have one.
func (ki *keyIndex) last() revEntry { return ki.revs[len(ki.revs)-1] }

// at returns the write visible at main revision rev: the newest entry with
// main <= rev, unless it is a tombstone or there is none.
func (ki *keyIndex) at(rev int64) (revEntry, bool) {
	n := len(ki.revs)
	var e revEntry
	if ki.revs[n-1].main <= rev {
		e = ki.revs[n-1] // common case: reading the current state
	} else {
		i := sort.Search(n, func(i int) bool { return ki.revs[i].main > rev })
		if i == 0 {
			return revEntry{}, false
		}
		e = ki.revs[i-1]
	}
	return e, !e.tomb
}

func (ki *keyIndex) clone(gen uint64) *keyIndex {
	revs := make([]revEntry, len(ki.revs), len(ki.revs)+2)
	copy(revs, ki.revs)
	return &keyIndex{key: ki.key, revs: revs, create: ki.create, ver: ki.ver, gen: gen}
}

// compactDrop returns how many of the oldest entries compaction at rev
// removes: all entries older than the newest one at or below rev, and that
// one too when it is a tombstone older than rev (nothing is visible at rev
// then). A tombstone at exactly rev stays, as in etcd (its issue 18089): a
// watch may start at the compacted revision and must see that deletion.
func (ki *keyIndex) compactDrop(rev int64) int {
	i := sort.Search(len(ki.revs), func(i int) bool { return ki.revs[i].main > rev })
	if i == 0 {
		return 0
	}
	if last := ki.revs[i-1]; last.tomb && last.main < rev {
		return i
	}
	return i - 1
}

// isGteEnd reports whether a range end means "every key >= key".
func isGteEnd(end []byte) bool { return len(end) == 1 && end[0] == 0 }

// visit calls fn for every keyIndex in etcd's range [key, end): end empty
// means the single key, end "\x00" means every key >= key. probe is scratch
// space for the lookups so the hot single-key path does not allocate.
func visit(t *index, probe *keyIndex, key, end []byte, fn func(*keyIndex) bool) {
	probe.key = key
	switch {
	case len(end) == 0:
		if ki, ok := t.Get(probe); ok {
			fn(ki)
		}
	case isGteEnd(end):
		t.AscendGreaterOrEqual(probe, fn)
	case bytes.Compare(key, end) < 0:
		t.AscendRange(probe, &keyIndex{key: end}, fn)
	}
	probe.key = nil
}

// inRange reports whether k lies in etcd's range [key, end) (see visit).
func inRange(k, key, end []byte) bool {
	switch {
	case len(end) == 0:
		return bytes.Equal(k, key)
	case isGteEnd(end):
		return bytes.Compare(k, key) >= 0
	default:
		return bytes.Compare(k, key) >= 0 && bytes.Compare(k, end) < 0
	}
}
