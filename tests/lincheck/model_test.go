package lincheck

import (
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
)

// TestLinearizableModel shows that the model accepts a linearizable history
// and rejects non-linearizable ones, so the check above can fail.
func TestLinearizableModel(t *testing.T) {
	get := func(c int, call, ret int64, key, val string, rev int64) porcupine.Operation {
		return porcupine.Operation{ClientId: c, Call: call, Return: ret, Input: Input{Kind: Get, Key: key}, Output: Output{Value: val, Rev: rev}}
	}
	put := func(c int, call, ret int64, key, val string, rev int64) porcupine.Operation {
		return porcupine.Operation{ClientId: c, Call: call, Return: ret, Input: Input{Kind: Put, Key: key, Value: val}, Output: Output{Rev: rev}}
	}
	lost := func(c int, call int64, key, val string) porcupine.Operation {
		return porcupine.Operation{ClientId: c, Call: call, Return: Infinity, Input: Input{Kind: Put, Key: key, Value: val}, Output: Output{Unknown: true}}
	}
	cas := func(c int, call, ret int64, key, expect, val string, out Output) porcupine.Operation {
		return porcupine.Operation{ClientId: c, Call: call, Return: ret, Input: Input{Kind: CAS, Key: key, Value: val, Expect: expect}, Output: out}
	}
	for _, tc := range []struct {
		name    string
		history []porcupine.Operation
		want    porcupine.CheckResult
	}{
		{"sequential put get", []porcupine.Operation{put(0, 0, 10, "a", "x", 2), get(1, 20, 30, "a", "x", 2)}, porcupine.Ok},
		{"concurrent read sees old or new", []porcupine.Operation{
			put(0, 0, 10, "a", "x", 2), put(0, 20, 40, "a", "y", 3),
			get(1, 25, 30, "a", "x", 2), get(2, 26, 35, "a", "y", 3), get(1, 45, 50, "a", "y", 3),
		}, porcupine.Ok},
		{"keys are independent", []porcupine.Operation{put(0, 0, 10, "a", "x", 2), get(1, 20, 30, "b", "", 0)}, porcupine.Ok},
		{"unknown write may apply later", []porcupine.Operation{lost(0, 0, "a", "x"), get(1, 10, 20, "a", "", 0), get(1, 30, 40, "a", "x", 5)}, porcupine.Ok},
		{"unknown write may never apply", []porcupine.Operation{lost(0, 0, "a", "x"), put(1, 10, 20, "a", "y", 3), get(1, 30, 40, "a", "y", 3)}, porcupine.Ok},
		{"cas on absent key, then a failed cas reads it", []porcupine.Operation{
			cas(0, 0, 10, "a", "", "x", Output{Succeeded: true, Rev: 2}),
			cas(1, 20, 30, "a", "", "y", Output{Value: "x", Rev: 2}),
		}, porcupine.Ok},
		{"stale read after a write returned", []porcupine.Operation{put(0, 0, 10, "a", "x", 2), get(1, 20, 30, "a", "", 0)}, porcupine.Illegal},
		{"read goes back in time", []porcupine.Operation{
			put(0, 0, 10, "a", "x", 2), put(0, 20, 30, "a", "y", 3),
			get(1, 15, 50, "a", "y", 3), get(2, 60, 70, "a", "x", 2),
		}, porcupine.Illegal},
		{"lost acknowledged write", []porcupine.Operation{put(0, 0, 10, "a", "x", 2), put(1, 0, 10, "a", "y", 3), get(2, 20, 30, "a", "", 0)}, porcupine.Illegal},
		{"revision goes backwards", []porcupine.Operation{put(0, 0, 10, "a", "x", 5), put(0, 20, 30, "a", "y", 4)}, porcupine.Illegal},
		{"read of a value at the wrong revision", []porcupine.Operation{put(0, 0, 10, "a", "x", 5), get(1, 20, 30, "a", "x", 6)}, porcupine.Illegal},
		{"two cas succeed on the same guard", []porcupine.Operation{
			put(0, 0, 10, "a", "x", 2),
			cas(1, 20, 30, "a", "x", "y", Output{Succeeded: true, Rev: 3}),
			cas(2, 40, 50, "a", "x", "z", Output{Succeeded: true, Rev: 4}),
		}, porcupine.Illegal},
		{"cas fails though the guard held", []porcupine.Operation{
			put(0, 0, 10, "a", "x", 2),
			cas(1, 20, 30, "a", "x", "y", Output{Value: "x", Rev: 2}),
		}, porcupine.Illegal},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := porcupine.CheckOperationsTimeout(Model(), tc.history, 5*time.Second); got != tc.want {
				t.Fatalf("check = %s, want %s", got, tc.want)
			}
		})
	}
}
