package cgroups

import (
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// fixtureResolver is a Resolver on a fake hierarchy: not cgroupfs, so every
// miss is a walk.
func fixtureResolver(t *testing.T, paths ...string) (*Resolver, string) {
	t.Helper()
	cgs := map[string]files{}
	for _, p := range paths {
		cgs[p] = v1Memcg("1\n", "", "0\n", "0\n")
	}
	root := fixture(t, cgs)
	r := NewResolver(Hierarchy{Root: root})
	if r.handles {
		t.Fatalf("%s taken for cgroupfs", root)
	}
	return r, root
}

func walks(r *Resolver) int {
	r.walkMu.Lock()
	defer r.walkMu.Unlock()
	return r.walks
}

func TestResolverPaths(t *testing.T) {
	leaf := "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" + uidSlice + ".slice/cri-containerd-" + id1 + ".scope"
	r, root := fixtureResolver(t, "/docker/"+id1, "/system.slice/nginx.service", leaf)
	for _, p := range []string{"/", "/docker", "/docker/" + id1, "/system.slice/nginx.service", leaf} {
		if got, ok := r.Path(inode(t, filepath.Join(root, p))); !ok || got != p {
			t.Errorf("Path(inode of %s) = %q, %v", p, got, ok)
		}
	}
	if n := walks(r); n != 1 {
		t.Errorf("%d walks, want 1: the first miss fills the cache", n)
	}
	if p, ok := r.Path(0); ok {
		t.Errorf("Path(0) = %q: 0 is the tracer's unknown", p)
	}
}

// stepClock gives r a clock that moves only when the returned func says.
func stepClock(r *Resolver) func(time.Duration) {
	var mu sync.Mutex
	now := time.Now()
	r.now = func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	return func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
}

func TestResolverKeepsRemoved(t *testing.T) {
	r, root := fixtureResolver(t, "/docker/"+id1)
	dir := filepath.Join(root, "docker", id1)
	id := inode(t, dir)
	if err := r.Refresh(); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	stepClock(r)(2 * r.minGap) // a rescan would be allowed: the cache must answer anyway
	if got, ok := r.Path(id); !ok || got != "/docker/"+id1 {
		t.Errorf("removed cgroup: Path = %q, %v", got, ok)
	}
	if n := walks(r); n != 1 {
		t.Errorf("%d walks, want only Refresh's: a hit must not walk", n)
	}
}

func TestResolverRescanRateLimit(t *testing.T) {
	r, root := fixtureResolver(t, "/a")
	r.minGap = 300 * time.Millisecond
	step := stepClock(r)
	if err := r.Refresh(); err != nil {
		t.Fatal(err)
	}
	// A cgroup created just after a walk waits for the next allowed one.
	dir := filepath.Join(root, "new")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	id := inode(t, dir)
	if _, ok := r.Path(id); ok {
		t.Fatal("resolved inside the rate limit: a walk was made")
	}
	// A storm of misses, concurrent, for ids that exist nowhere.
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 1000 {
				r.Path(uint64(1<<40 + g*1000 + i))
			}
		})
	}
	wg.Wait()
	if n := walks(r); n > 2 {
		t.Errorf("%d walks during a storm of 8000 misses within %v: want at most 2", n, r.minGap)
	}
	step(r.minGap)
	if got, ok := r.Path(id); !ok || got != "/new" {
		t.Errorf("after the gap: Path = %q, %v", got, ok)
	}
}

func TestResolverCacheBound(t *testing.T) {
	var paths []string
	for i := range 40 {
		paths = append(paths, fmt.Sprintf("/c%02d", i))
	}
	r, root := fixtureResolver(t, paths...)
	r.cache = newGenCache(16)
	if err := r.Refresh(); err != nil {
		t.Fatal(err)
	}
	if n := r.cache.len(); n > 16 {
		t.Errorf("cache holds %d entries, bound 16", n)
	}
	// Looked-up entries survive later insertions; the rest go.
	keep := inode(t, filepath.Join(root, "c39"))
	for i := range 100 {
		if _, ok := r.Path(keep); !ok {
			t.Fatal("c39 lost")
		}
		r.add(uint64(1<<40+i), "/filler")
	}
	if n := r.cache.len(); n > 16 {
		t.Errorf("cache holds %d entries, bound 16", n)
	}
	if n := walks(r); n != 1 {
		t.Errorf("%d walks: the entry in use must stay cached", n)
	}
}

func TestGenCache(t *testing.T) {
	c := newGenCache(4)
	for i := range uint64(10) {
		c.put(i, fmt.Sprint(i))
		if c.len() > 4 {
			t.Fatalf("%d entries, bound 4", c.len())
		}
	}
	// The last two (half the bound) are always there.
	for _, i := range []uint64{8, 9} {
		if p, ok := c.get(i); !ok || p != fmt.Sprint(i) {
			t.Errorf("get(%d) = %q, %v", i, p, ok)
		}
	}
	if _, ok := c.get(0); ok {
		t.Error("oldest entry not evicted")
	}
}
