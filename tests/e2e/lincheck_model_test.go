package e2e

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

// linKind is the kind of a recorded operation.
type linKind int

const (
	linGet linKind = iota // linearizable Range of one key
	linPut                // Put of a unique value
	linCAS                // Txn: If(expected value, or absent) Then(Put) Else(Get)
)

// linInput is what a client asked for.
type linInput struct {
	Kind  linKind
	Key   string
	Value string // Put / CAS: the unique value written
	// Expect is the CAS guard: the value the client last read, or "" for
	// "the key does not exist" (compared with CreateRevision == 0, because
	// etcd's value comparison never succeeds on a missing key).
	Expect string
}

// linOutput is what the server answered. Unknown marks a write whose
// outcome is not known (error or timeout); its Return is linInfinity.
type linOutput struct {
	Unknown   bool
	Succeeded bool   // CAS: the guard held
	Value     string // Get, failed CAS: the value read ("" = absent)
	Rev       int64  // Put, successful CAS: header revision; Get, failed CAS: the key's modRevision
}

// linInfinity is the Return time of a write whose outcome is unknown: it
// may take effect at any point after its call, as in etcd's robustness
// suite.
const linInfinity int64 = 1<<63 - 1

// linState is one key's state.
type linState struct {
	Value string
	Rev   int64
	// RevLow says Rev is only a lower bound: Value was written by a write of
	// unknown outcome, so its real modRevision is > Rev but not known.
	RevLow bool
}

// observe reports whether reading (value, rev) is possible in s.
func (s linState) observe(value string, rev int64) bool {
	if s.Value != value {
		return false
	}
	if s.RevLow {
		return rev > s.Rev
	}
	return rev == s.Rev
}

// linStep returns every state the key can be in after op, none if op's
// output is impossible in s.
func linStep(s linState, in linInput, out linOutput) []any {
	switch in.Kind {
	case linGet:
		if !s.observe(out.Value, out.Rev) {
			return nil
		}
		return []any{linState{Value: out.Value, Rev: out.Rev}}
	case linPut:
		if out.Unknown {
			return []any{s, linState{Value: in.Value, Rev: s.Rev, RevLow: true}}
		}
		// With RevLow the real previous revision is unknown; > Rev is the
		// best check available and still a necessary one.
		if out.Rev <= s.Rev {
			return nil
		}
		return []any{linState{Value: in.Value, Rev: out.Rev}}
	case linCAS:
		guard := s.Value == in.Expect
		switch {
		case out.Unknown && guard:
			return []any{s, linState{Value: in.Value, Rev: s.Rev, RevLow: true}}
		case out.Unknown:
			return []any{s}
		case out.Succeeded:
			if !guard || out.Rev <= s.Rev {
				return nil
			}
			return []any{linState{Value: in.Value, Rev: out.Rev}}
		default:
			if guard || !s.observe(out.Value, out.Rev) {
				return nil
			}
			return []any{linState{Value: out.Value, Rev: out.Rev}}
		}
	}
	return nil
}

// linPartition groups operations by key, in a stable order.
func linPartition(history []porcupine.Operation) [][]porcupine.Operation {
	byKey := map[string][]porcupine.Operation{}
	for _, op := range history {
		k := op.Input.(linInput).Key
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

func linDescribe(in linInput, out linOutput) string {
	var s string
	switch in.Kind {
	case linGet:
		s = fmt.Sprintf("get(%s)", in.Key)
	case linPut:
		s = fmt.Sprintf("put(%s, %s)", in.Key, in.Value)
	case linCAS:
		s = fmt.Sprintf("cas(%s, %q -> %s)", in.Key, in.Expect, in.Value)
	}
	switch {
	case out.Unknown:
		return s + " -> unknown"
	case in.Kind == linPut || (in.Kind == linCAS && out.Succeeded):
		return fmt.Sprintf("%s -> ok rev %d", s, out.Rev)
	case in.Kind == linCAS:
		return fmt.Sprintf("%s -> failed, read %q rev %d", s, out.Value, out.Rev)
	default:
		return fmt.Sprintf("%s -> %q rev %d", s, out.Value, out.Rev)
	}
}

// linModel is the porcupine model described at the top of this file.
func linModel() porcupine.Model {
	nm := porcupine.NondeterministicModel{
		Partition: linPartition,
		Init:      func() []any { return []any{linState{}} },
		Step: func(state, input, output any) []any {
			return linStep(state.(linState), input.(linInput), output.(linOutput))
		},
		Equal: func(a, b any) bool { return a.(linState) == b.(linState) },
		Hash: func(state any) uint64 {
			s := state.(linState)
			h := fnv.New64a()
			fmt.Fprintf(h, "%s\x00%d\x00%t", s.Value, s.Rev, s.RevLow)
			return h.Sum64()
		},
		DescribeOperation: func(input, output any) string {
			return linDescribe(input.(linInput), output.(linOutput))
		},
		DescribeState: func(state any) string {
			s := state.(linState)
			if s.RevLow {
				return fmt.Sprintf("%q@>%d", s.Value, s.Rev)
			}
			return fmt.Sprintf("%q@%d", s.Value, s.Rev)
		},
	}
	return nm.ToModel()
}
