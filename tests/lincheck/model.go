// Package lincheck records a KV history from real clients and checks it
// for linearizability with porcupine; the e2e and robustness suites share it.
package lincheck

import (
	"fmt"
	"hash/fnv"
	"sort"

	"github.com/anishathalye/porcupine"
)

// The porcupine model used by the linearizability tests.
//
// Choice: the history is partitioned by key and the state of one partition
// is one key's (value, modRevision). Linearizability is local (a history is
// linearizable iff each object's sub-history is), so checking each key on
// its own is exact for values. Revisions are global in etcd, which is why
// etcd's robustness suite keeps one global state; here a key's revisions
// are only compared with that same key's (a write's revision must exceed
// the key's previous modRevision, a read must return the modRevision of the
// write it observes). That is a necessary condition on revisions, weaker
// than etcd's global check, and it keeps the search per key small enough
// to check thousands of operations in well under a second.
//
// Values are unique per write and never "", so "" with revision 0 means
// "absent": the key is never deleted in these tests.

// Kind is the kind of a recorded operation.
type Kind int

const (
	Get Kind = iota // linearizable Range of one key
	Put             // Put of a unique value
	CAS             // Txn: If(expected value, or absent) Then(Put) Else(Get)
)

// Input is what a client asked for.
type Input struct {
	Kind  Kind
	Key   string
	Value string // Put / CAS: the unique value written
	// Expect is the CAS guard: the value the client last read, or "" for
	// "the key does not exist" (compared with CreateRevision == 0, because
	// etcd's value comparison never succeeds on a missing key).
	Expect string
}

// Output is what the server answered. Unknown marks a write whose
// outcome is not known (error or timeout); its Return is Infinity.
type Output struct {
	Unknown   bool
	Succeeded bool   // CAS: the guard held
	Value     string // Get, failed CAS: the value read ("" = absent)
	Rev       int64  // Put, successful CAS: header revision; Get, failed CAS: the key's modRevision
}

// Infinity is the Return time of a write whose outcome is unknown: it
// may take effect at any point after its call, as in etcd's robustness
// suite.
const Infinity int64 = 1<<63 - 1

// keyState is one key's state.
type keyState struct {
	Value string
	Rev   int64
	// RevLow says Rev is only a lower bound: Value was written by a write of
	// unknown outcome, so its real modRevision is > Rev but not known.
	RevLow bool
}

// observe reports whether reading (value, rev) is possible in s.
func (s keyState) observe(value string, rev int64) bool {
	if s.Value != value {
		return false
	}
	if s.RevLow {
		return rev > s.Rev
	}
	return rev == s.Rev
}

// step returns every state the key can be in after op, none if op's
// output is impossible in s.
func step(s keyState, in Input, out Output) []any {
	switch in.Kind {
	case Get:
		if !s.observe(out.Value, out.Rev) {
			return nil
		}
		return []any{keyState{Value: out.Value, Rev: out.Rev}}
	case Put:
		if out.Unknown {
			return []any{s, keyState{Value: in.Value, Rev: s.Rev, RevLow: true}}
		}
		// With RevLow the real previous revision is unknown; > Rev is the
		// best check available and still a necessary one.
		if out.Rev <= s.Rev {
			return nil
		}
		return []any{keyState{Value: in.Value, Rev: out.Rev}}
	case CAS:
		guard := s.Value == in.Expect
		switch {
		case out.Unknown && guard:
			return []any{s, keyState{Value: in.Value, Rev: s.Rev, RevLow: true}}
		case out.Unknown:
			return []any{s}
		case out.Succeeded:
			if !guard || out.Rev <= s.Rev {
				return nil
			}
			return []any{keyState{Value: in.Value, Rev: out.Rev}}
		default:
			if guard || !s.observe(out.Value, out.Rev) {
				return nil
			}
			return []any{keyState{Value: out.Value, Rev: out.Rev}}
		}
	}
	return nil
}

// partition groups operations by key, in a stable order.
func partition(history []porcupine.Operation) [][]porcupine.Operation {
	byKey := map[string][]porcupine.Operation{}
	for _, op := range history {
		k := op.Input.(Input).Key
		byKey[k] = append(byKey[k], op)
	}
	keys := make([]string, 0, len(byKey))
	for k := range byKey {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([][]porcupine.Operation, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, byKey[k])
	}
	return parts
}

func describe(in Input, out Output) string {
	var s string
	switch in.Kind {
	case Get:
		s = fmt.Sprintf("get(%s)", in.Key)
	case Put:
		s = fmt.Sprintf("put(%s, %s)", in.Key, in.Value)
	case CAS:
		s = fmt.Sprintf("cas(%s, %q -> %s)", in.Key, in.Expect, in.Value)
	}
	switch {
	case out.Unknown:
		return s + " -> unknown"
	case in.Kind == Put || (in.Kind == CAS && out.Succeeded):
		return fmt.Sprintf("%s -> ok rev %d", s, out.Rev)
	case in.Kind == CAS:
		return fmt.Sprintf("%s -> failed, read %q rev %d", s, out.Value, out.Rev)
	default:
		return fmt.Sprintf("%s -> %q rev %d", s, out.Value, out.Rev)
	}
}

// Model is the porcupine model described at the top of this file.
func Model() porcupine.Model {
	nm := porcupine.NondeterministicModel{
		Partition: partition,
		Init:      func() []any { return []any{keyState{}} },
		Step: func(st, input, output any) []any {
			return step(st.(keyState), input.(Input), output.(Output))
		},
		Equal: func(a, b any) bool { return a.(keyState) == b.(keyState) },
		Hash: func(st any) uint64 {
			s := st.(keyState)
			h := fnv.New64a()
			fmt.Fprintf(h, "%s\x00%d\x00%t", s.Value, s.Rev, s.RevLow)
			return h.Sum64()
		},
		DescribeOperation: func(input, output any) string {
			return describe(input.(Input), output.(Output))
		},
		DescribeState: func(st any) string {
			s := st.(keyState)
			if s.RevLow {
				return fmt.Sprintf("%q@>%d", s.Value, s.Rev)
			}
			return fmt.Sprintf("%q@%d", s.Value, s.Rev)
		},
	}
	return nm.ToModel()
}
