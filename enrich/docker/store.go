package docker

import (
	"maps"
	"sync"
	"time"
)

// store holds the containers Docker has, and for a while the ones it
// removed: an OOM-killed `docker run --rm` container is destroyed a moment
// after the kill, often before its event is enriched.
type store struct {
	retention time.Duration
	maxGone   int

	mu      sync.Mutex
	live    map[string]Info
	gone    map[string]goneInfo
	order   []string      // gone ids, oldest removal first
	changed chan struct{} // closed (and replaced) when an Info is added
}

type goneInfo struct {
	Info
	at time.Time
}

func newStore(retention time.Duration, maxGone int) *store {
	return &store{
		retention: retention, maxGone: maxGone,
		live: map[string]Info{}, gone: map[string]goneInfo{}, changed: make(chan struct{}),
	}
}

// get finds a container, live or removed less than retention ago.
func (s *store) get(id string, now time.Time) (Info, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if info, ok := s.live[id]; ok {
		return info, true
	}
	s.evict(now)
	g, ok := s.gone[id]
	return g.Info, ok
}

// put adds or updates a container. A removed one stays removed: an answer
// to an inspect that was under way when the destroy event came must not
// bring it back to life.
func (s *store) put(info Info) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if g, ok := s.gone[info.ID]; ok {
		g.Info = info
		s.gone[info.ID] = g
	} else {
		s.live[info.ID] = info
	}
	close(s.changed)
	s.changed = make(chan struct{})
}

// remove moves a destroyed container to the removed ones.
func (s *store) remove(id string, now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.removeLocked(id, now)
	s.evict(now)
}

func (s *store) removeLocked(id string, now time.Time) {
	info, ok := s.live[id]
	if !ok {
		return
	}
	delete(s.live, id)
	s.gone[id] = goneInfo{info, now}
	s.order = append(s.order, id)
}

// evict forgets removed containers past retention, and the oldest beyond
// maxGone.
func (s *store) evict(now time.Time) {
	for len(s.order) > 0 {
		id := s.order[0]
		if len(s.gone) <= s.maxGone && now.Sub(s.gone[id].at) < s.retention {
			return
		}
		delete(s.gone, id)
		s.order = s.order[1:]
	}
}

// liveIDs is a snapshot of the live ids, taken before a re-list.
func (s *store) liveIDs() map[string]bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	ids := make(map[string]bool, len(s.live))
	for id := range s.live {
		ids[id] = true
	}
	return ids
}

// sync applies a fresh list: the containers of before that it lacks were
// removed while no events came. Ones added since before (by a concurrent
// Lookup) are not the list's to judge.
func (s *store) sync(before map[string]bool, listed map[string]Info, now time.Time) {
	for _, info := range listed {
		s.put(info)
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

// wait returns a channel closed at the next put.
func (s *store) wait() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.changed
}

func (s *store) counts() (live, gone int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.live), len(s.gone)
}

// clone gives callers their own label map: the cache's stays unshared.
func clone(info Info) Info {
	info.Labels = maps.Clone(info.Labels)
	return info
}
