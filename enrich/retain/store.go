// Package retain keeps what a container runtime lists, and for a while what
// it removed: an OOM-killed container is often removed (`docker run --rm`, a
// pod deleted with its restart policy spent) a moment after the kill, before
// its event is enriched. The Docker and CRI caches both keep their metadata
// here.
package retain

import (
	"sync"
	"time"
)

// Store maps ids to values, live or removed less than a retention ago (at
// most a bound of removed ones). Safe for concurrent use.
type Store[T any] struct {
	retention time.Duration
	maxGone   int
	key       func(T) string
	clone     func(T) T // what callers get: their own copy of shared parts

	mu      sync.Mutex
	live    map[string]T
	gone    map[string]gone[T]
	order   []string      // gone ids, oldest removal first
	changed chan struct{} // closed (and replaced) when a value is added
}

type gone[T any] struct {
	v  T
	at time.Time
}

// New makes a Store. key gives a value's id; clone (nil: none) copies what
// a value shares, so that callers cannot change the store's.
func New[T any](retention time.Duration, maxGone int, key func(T) string, clone func(T) T) *Store[T] {
	if clone == nil {
		clone = func(v T) T { return v }
	}
	return &Store[T]{
		retention: retention, maxGone: maxGone, key: key, clone: clone,
		live: map[string]T{}, gone: map[string]gone[T]{}, changed: make(chan struct{}),
	}
}

// Get finds a value, live or removed less than retention ago.
func (s *Store[T]) Get(id string, now time.Time) (T, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if v, ok := s.live[id]; ok {
		return s.clone(v), true
	}
	s.evict(now)
	g, ok := s.gone[id]
	if !ok {
		var zero T
		return zero, false
	}
	return s.clone(g.v), true
}

// Put adds or updates a value. A removed one stays removed: an answer to a
// query that was under way when its removal came must not bring it back.
func (s *Store[T]) Put(v T) {
	s.mu.Lock()
	defer s.mu.Unlock()
	id := s.key(v)
	if g, ok := s.gone[id]; ok {
		g.v = v
		s.gone[id] = g
	} else {
		s.live[id] = v
	}
	close(s.changed)
	s.changed = make(chan struct{})
}

// Remove moves a value to the removed ones.
func (s *Store[T]) Remove(id string, now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.removeLocked(id, now)
	s.evict(now)
}

func (s *Store[T]) removeLocked(id string, now time.Time) {
	v, ok := s.live[id]
	if !ok {
		return
	}
	delete(s.live, id)
	s.gone[id] = gone[T]{v, now}
	s.order = append(s.order, id)
}

// evict forgets removed values past retention, and the oldest beyond maxGone.
func (s *Store[T]) evict(now time.Time) {
	for len(s.order) > 0 {
		id := s.order[0]
		if len(s.gone) <= s.maxGone && now.Sub(s.gone[id].at) < s.retention {
			return
		}
		delete(s.gone, id)
		s.order = s.order[1:]
	}
}

// LiveIDs is a snapshot of the live ids, taken before a re-list.
func (s *Store[T]) LiveIDs() map[string]bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	ids := make(map[string]bool, len(s.live))
	for id := range s.live {
		ids[id] = true
	}
	return ids
}

// Sync applies a fresh list: the ids of before that it lacks were removed
// while nobody said so. Ones added since before (by a concurrent lookup)
// are not the list's to judge.
func (s *Store[T]) Sync(before map[string]bool, listed map[string]T, now time.Time) {
	for _, v := range listed {
		s.Put(v)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for id := range before {
		if _, ok := listed[id]; !ok {
			s.removeLocked(id, now)
		}
	}
	s.evict(now)
}

// Wait returns a channel closed at the next Put.
func (s *Store[T]) Wait() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.changed
}

// Counts are the live values and the removed ones still kept.
func (s *Store[T]) Counts() (live, gone int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.live), len(s.gone)
}
