package cgroups

// genCache maps cgroup ids to paths within a fixed bound, with no per-entry
// bookkeeping: entries go into the current generation; once it holds half
// the bound it becomes the previous generation and the old previous one is
// dropped. A hit in the previous generation copies the entry forward, so
// what is still looked up survives. It holds at most size entries and at
// least the size/2 most recently added or used.
//
// Keeping stale entries is safe: on 64-bit kernels a cgroup id is never
// reused (kernfs ids carry a generation in the high 32 bits), so an old
// entry can only be out of date if its cgroup was renamed.
type genCache struct {
	half      int
	cur, prev map[uint64]string
}

func newGenCache(size int) *genCache {
	return &genCache{half: max(size/2, 1), cur: map[uint64]string{}, prev: map[uint64]string{}}
}

func (c *genCache) get(id uint64) (string, bool) {
	if p, ok := c.cur[id]; ok {
		return p, true
	}
	p, ok := c.prev[id]
	if ok {
		c.put(id, p)
	}
	return p, ok
}

func (c *genCache) put(id uint64, path string) {
	c.cur[id] = path
	if len(c.cur) >= c.half {
		c.prev, c.cur = c.cur, map[uint64]string{}
	}
}

func (c *genCache) len() int { return len(c.cur) + len(c.prev) }
