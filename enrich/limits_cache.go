package enrich

import (
	"sync"
	"time"

	"github.com/oomtrace/oomtrace/enrich/cgroups"
)

// limitsTTL is how long a cgroup chain's limits, once read, serve later
// kills in the same cgroup: a storm of kills reads them once a second, not
// a dozen files per kill, yet a limit an admin changes shows within a
// second. Usage read that way is from the storm's first kill of the second.
const limitsTTL = time.Second

// limitsCacheMax bounds the cache; past it, expired entries are dropped.
const limitsCacheMax = 256

// limitsCache holds recent cgroups.ReadLimits results by cgroup path.
type limitsCache struct {
	mu      sync.Mutex
	entries map[string]limitsEntry
}

type limitsEntry struct {
	limits cgroups.Limits
	at     time.Time
}

// get returns the limits of cgPath, read by read when none are cached or
// they are older than limitsTTL. Errors are not cached: the next kill
// reads again.
func (c *limitsCache) get(cgPath string, now time.Time, read func(string) (cgroups.Limits, error)) (cgroups.Limits, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.entries[cgPath]; ok && now.Sub(e.at) < limitsTTL {
		return e.limits, nil
	}
	l, err := read(cgPath)
	if err != nil {
		return l, err
	}
	if c.entries == nil {
		c.entries = map[string]limitsEntry{}
	}
	if len(c.entries) >= limitsCacheMax {
		for p, e := range c.entries {
			if now.Sub(e.at) >= limitsTTL {
				delete(c.entries, p)
			}
		}
	}
	if len(c.entries) < limitsCacheMax {
		c.entries[cgPath] = limitsEntry{l, now}
	}
	return l, nil
}
