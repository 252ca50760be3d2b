package enrich

import (
	"sync"
	"time"

	"github.com/oomtrace/oomtrace/enrich/cgroups"
	"github.com/oomtrace/oomtrace/rank"
)

// limitsTTL is how long a cgroup chain's limits, once read, serve later
// kills in the same cgroup: a storm of kills reads them once a second, not
// a dozen files per kill, yet a limit an admin changes shows within a
// second. Usage read that way is from the storm's first kill of the second.
const limitsTTL = time.Second

// procsTTL is how long the processes of an OOM's scope, once read for the
// model's candidates, serve later kills in it. Each /proc/PID open takes
// the task's lock, which the OOM killer holds scanning the same tasks: in
// a storm (four hogs at once in one cgroup) a read of three processes cost
// 1.1 ms of CPU per kill, spinning. Read once per 100 ms instead, the list
// of a storm's kill may be that old; its victim always comes from the
// kill's own counters.
const procsTTL = 100 * time.Millisecond

// pathCacheMax bounds a cache; past it, expired entries are dropped.
const pathCacheMax = 256

// pathCache holds recent reads of something about a cgroup, by path.
type pathCache[T any] struct {
	ttl     time.Duration
	mu      sync.Mutex
	entries map[string]pathEntry[T]
}

type pathEntry[T any] struct {
	v  T
	at time.Time
}

// limitsCache holds recent cgroups.ReadLimits results.
type limitsCache = pathCache[cgroups.Limits]

// procsCache holds recent rank.Source.Processes results.
type procsCache = pathCache[[]rank.Process]

// get returns the value for path, read by read when none is cached or it
// is older than the cache's ttl. Errors are not cached: the next kill
// reads again.
func (c *pathCache[T]) get(path string, now time.Time, read func(string) (T, error)) (T, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.entries[path]; ok && now.Sub(e.at) < c.ttl {
		return e.v, nil
	}
	v, err := read(path)
	if err != nil {
		return v, err
	}
	if c.entries == nil {
		c.entries = map[string]pathEntry[T]{}
	}
	if len(c.entries) >= pathCacheMax {
		for p, e := range c.entries {
			if now.Sub(e.at) >= c.ttl {
				delete(c.entries, p)
			}
		}
	}
	if len(c.entries) < pathCacheMax {
		c.entries[path] = pathEntry[T]{v, now}
	}
	return v, nil
}
