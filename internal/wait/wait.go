// Package wait lets a request wait for the apply loop: by request ID for
// the result of its own proposal, or by index for "applied at least N".
package wait

import (
	"sync"
)

// Registry maps request IDs to waiters. One shard lock keeps contention low
// on the hot write path without a goroutine per request.
type Registry struct {
	shards [16]struct {
		mu sync.Mutex
		m  map[uint64]chan any
	}
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry {
	r := &Registry{}
	for i := range r.shards {
		r.shards[i].m = make(map[uint64]chan any)
	}
	return r
}

// Register returns the channel on which the result for id arrives, and
// possibly before it one Notify.
func (r *Registry) Register(id uint64) <-chan any {
	s := &r.shards[id%16]
	// Room for one Notify and the result: Trigger never blocks.
	ch := make(chan any, 2)
	s.mu.Lock()
	s.m[id] = ch
	s.mu.Unlock()
	return ch
}

// Trigger delivers x to the waiter of id, if any, and forgets it.
func (r *Registry) Trigger(id uint64, x any) {
	s := &r.shards[id%16]
	s.mu.Lock()
	ch, ok := s.m[id]
	delete(s.m, id)
	s.mu.Unlock()
	if ok {
		ch <- x
	}
}

// Notify delivers x to the waiter of id without forgetting it, if the
// waiter exists and has nothing pending; it reports whether it delivered.
func (r *Registry) Notify(id uint64, x any) bool {
	s := &r.shards[id%16]
	s.mu.Lock()
	defer s.mu.Unlock()
	ch, ok := s.m[id]
	if !ok || len(ch) > 0 {
		return false
	}
	ch <- x
	return true
}

// Cancel forgets the waiter of id (the caller gave up).
func (r *Registry) Cancel(id uint64) {
	s := &r.shards[id%16]
	s.mu.Lock()
	delete(s.m, id)
	s.mu.Unlock()
}

// Index lets callers wait until a monotonically increasing index (the
// applied index) reaches a value.
type Index struct {
	mu      sync.Mutex
	current uint64
	waiters map[uint64][]chan struct{}
}

// NewIndex returns an Index starting at cur.
func NewIndex(cur uint64) *Index { return &Index{current: cur, waiters: map[uint64][]chan struct{}{}} }

// Wait returns a channel closed once the index is >= i.
func (w *Index) Wait(i uint64) <-chan struct{} {
	ch := make(chan struct{})
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.current >= i {
		close(ch)
		return ch
	}
	w.waiters[i] = append(w.waiters[i], ch)
	return ch
}

// Trigger advances the index to i and releases every waiter at or below it.
func (w *Index) Trigger(i uint64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if i <= w.current {
		return
	}
	w.current = i
	for k, chs := range w.waiters {
		if k <= i {
			for _, ch := range chs {
				close(ch)
			}
			delete(w.waiters, k)
		}
	}
}

// Current returns the index.
func (w *Index) Current() uint64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.current
}
