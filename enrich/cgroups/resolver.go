package cgroups

import (
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/oomtrace/oomtrace/kernel/cgroupfs"
)

const (
	// cacheSize bounds the id→path cache: 8192 entries of ~200 bytes, under
	// 2 MB at worst. The cache keeps at least the 4096 entries last added
	// or used, more cgroups than most nodes have, so a full walk fits and
	// removed cgroups stay resolvable long after.
	cacheSize = 8192
	// minRescanGap is the least time between two walks triggered by misses:
	// an OOM storm in fresh cgroups gets at most 10 walks a second.
	minRescanGap = 100 * time.Millisecond
	// rescanCPUShare stretches the gap on big trees to this many times the
	// last walk's duration, so misses never keep more than ~1/10 of a CPU
	// walking, whatever the tree's size.
	rescanCPUShare = 10
)

// Resolver turns cgroup ids of one hierarchy into paths relative to its
// root. It is safe for concurrent use.
//
// A miss is resolved with open_by_handle_at(2) on cgroupfs (microseconds;
// an id it does not find is gone and no walk is made), else by a walk of
// the hierarchy, rate-limited. Resolved paths are cached and kept after
// their cgroup is removed: a container's cgroup often goes away right
// after its process is OOM-killed, before the event is enriched.
type Resolver struct {
	h       Hierarchy
	handles bool // h is on cgroupfs: try pathByHandle first

	mu    sync.Mutex
	cache *genCache

	walkMu   sync.Mutex // one walk at a time; misses during a walk wait for it
	nextWalk time.Time  // earliest miss-triggered walk
	minGap   time.Duration
	now      func() time.Time // time.Now; tests step a clock of their own
	walks    int              // walks done, for tests
}

// NewResolver returns a Resolver for h with an empty cache; call Refresh to
// fill it.
func NewResolver(h Hierarchy) *Resolver {
	return &Resolver{h: h, handles: onCgroupfs(h.Root), cache: newGenCache(cacheSize), minGap: minRescanGap, now: time.Now}
}

// Path returns the path of cgroup id relative to the hierarchy root ("/"
// for the root, e.g. "/docker/<id>"), and false when it cannot be found.
func (r *Resolver) Path(id uint64) (string, bool) {
	if id == 0 {
		return "", false // the tracer's "unknown"
	}
	if p, ok := r.cached(id); ok {
		return p, true
	}
	if r.handles {
		p, err := pathByHandle(r.h.Root, id)
		if err == nil {
			r.add(id, p)
			return p, true
		}
		if errors.Is(err, errGone) {
			return "", false
		}
		// No CAP_DAC_READ_SEARCH, no cgroup file handles, or out of
		// fds: walk. Trying again next time costs microseconds.
	}
	r.rescan()
	return r.cached(id)
}

// Keep caches the path of cgroup id now, while the cgroup exists, so that
// a later Path finds it even once it is removed. It only uses the cache and
// a file handle (microseconds), never a walk: it is called on the tracer's
// reading goroutine, which must not stall behind a walk of a big tree.
func (r *Resolver) Keep(id uint64) {
	if id == 0 || !r.handles {
		return
	}
	if _, ok := r.cached(id); ok {
		return
	}
	if p, err := pathByHandle(r.h.Root, id); err == nil {
		r.add(id, p)
	}
}

// Refresh walks the whole hierarchy and caches every cgroup in it. Call it
// at startup so that cgroups removed before their first lookup resolve.
func (r *Resolver) Refresh() error {
	r.walkMu.Lock()
	defer r.walkMu.Unlock()
	return r.walk()
}

// rescan walks after a miss unless the last walk was too recent. A failed
// walk only leaves the miss a miss; Refresh is where walk errors surface.
func (r *Resolver) rescan() {
	r.walkMu.Lock()
	defer r.walkMu.Unlock()
	if r.now().Before(r.nextWalk) {
		return
	}
	_ = r.walk()
}

// walk needs walkMu held.
func (r *Resolver) walk() error {
	start := r.now()
	found, err := walkIDs(r.h.Root)
	end := r.now()
	r.walks++
	r.nextWalk = end.Add(max(r.minGap, rescanCPUShare*end.Sub(start)))
	if err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, c := range found {
		r.cache.put(c.id, c.path)
	}
	return nil
}

func (r *Resolver) cached(id uint64) (string, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.cache.get(id)
}

func (r *Resolver) add(id uint64, path string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.cache.put(id, path)
}

type idPath struct {
	id   uint64
	path string
}

// walkIDs lists every cgroup under root with its id (see cgroupfs.Walk:
// getdents with the inode it returns, no stat, cgroups removed meanwhile
// skipped). A cgroup removed between its entry and its listing is kept:
// its id did name that path, and the cache is there to keep such ids.
func walkIDs(root string) ([]idPath, error) {
	var out []idPath
	err := cgroupfs.Walk(root, struct{}{}, func(d cgroupfs.Dir, _ struct{}) (struct{}, error) {
		out = append(out, idPath{d.ID, d.Path})
		return struct{}{}, nil
	}, nil)
	if err != nil {
		return nil, fmt.Errorf("walking cgroups: %w", err)
	}
	return out, nil
}
