package wait

import "testing"

// Notify reaches a waiter without ending its wait, at most one pending at
// a time, and never makes Trigger block.
func TestNotifyThenTrigger(t *testing.T) {
	r := NewRegistry()
	ch := r.Register(7)
	if !r.Notify(7, "again") {
		t.Fatal("Notify to a registered waiter was not delivered")
	}
	if r.Notify(7, "again") {
		t.Fatal("a second Notify was delivered while the first is pending")
	}
	r.Trigger(7, "done") // must not block with a notice pending
	if got := <-ch; got != "again" {
		t.Fatalf("first value %v, want the notice", got)
	}
	if got := <-ch; got != "done" {
		t.Fatalf("second value %v, want the result", got)
	}
	if r.Notify(7, "late") || r.Notify(8, "unknown") {
		t.Fatal("Notify delivered to a waiter that is gone or never was")
	}
}
