package cgroups

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/oomtrace/oomtrace/internal/oomtest"
)

// hostHierarchy is this machine's memory hierarchy, or a skip saying why not.
func hostHierarchy(tb testing.TB) Hierarchy {
	tb.Helper()
	oomtest.RequireRoot(tb)
	h, err := FindMemoryHierarchy()
	if err != nil {
		tb.Skipf("needs a memory cgroup hierarchy: %v", err)
	}
	return h
}

func relPath(tb testing.TB, h Hierarchy, dir string) string {
	tb.Helper()
	rel, err := filepath.Rel(h.Root, dir)
	if err != nil {
		tb.Fatal(err)
	}
	return "/" + rel
}

// TestHostNestedLimits: a child limited to 500M under a parent limited to
// 200M, in the real hierarchy, resolved by id both ways (file handle and
// walk); the child keeps resolving after it is removed.
func TestHostNestedLimits(t *testing.T) {
	h := hostHierarchy(t)
	oh := oomtest.Hierarchy{Root: h.Root, V2: h.V2}
	parent := oomtest.NewCgroup(t, oh, nil, "cgroups", mb200)
	child := oomtest.NewCgroup(t, oh, parent, "child", mb500)
	want := relPath(t, h, child.Path)

	byHandle := NewResolver(h)
	if !byHandle.handles {
		t.Fatalf("%s not seen as cgroupfs", h.Root)
	}
	byWalk := NewResolver(h)
	byWalk.handles = false
	for name, r := range map[string]*Resolver{"handle": byHandle, "walk": byWalk} {
		if got, ok := r.Path(child.ID); !ok || got != want {
			t.Errorf("%s: Path(%d) = %q, %v; want %q", name, child.ID, got, ok, want)
		}
		if got, ok := r.Path(parent.ID); !ok || got != relPath(t, h, parent.Path) {
			t.Errorf("%s: parent Path = %q, %v", name, got, ok)
		}
	}
	if n := walks(byHandle); n != 0 {
		t.Errorf("handle resolver walked %d times", n)
	}

	l, err := ReadLimits(h, want)
	if err != nil {
		t.Fatal(err)
	}
	if len(l.Chain) != 3 || l.Chain[2].Path != "/" {
		t.Fatalf("chain %q: want child, parent, root", chainPaths(l))
	}
	checkValue(t, "effective", l.Effective, ptr(mb200))
	if wantP := relPath(t, h, parent.Path); l.EffectivePath != wantP {
		t.Errorf("effective limit held by %q, want the parent %q", l.EffectivePath, wantP)
	}
	checkValue(t, "child limit", l.Chain[0].Limit, ptr(mb500))
	checkValue(t, "root limit", l.Chain[2].Limit, nil)
	if l.Chain[0].Usage == nil {
		t.Error("child usage unknown")
	}
	if hit, ok := l.HitLimit(""); !ok || hit.Path != l.EffectivePath || hit.Source != SourceInferred {
		t.Errorf("inferred hit %+v, %v", hit, ok)
	}

	if err := child.Remove(); err != nil {
		t.Fatal(err)
	}
	for name, r := range map[string]*Resolver{"handle": byHandle, "walk": byWalk} {
		if got, ok := r.Path(child.ID); !ok || got != want {
			t.Errorf("%s: removed child: Path = %q, %v; want %q from the cache", name, got, ok, want)
		}
	}
	// Without the cache there is nothing to find, and the handle says so
	// without a walk.
	fresh := NewResolver(h)
	if got, ok := fresh.Path(child.ID); ok {
		t.Errorf("fresh resolver found the removed child at %q", got)
	}
	if n := walks(fresh); n != 0 {
		t.Errorf("removed id: %d walks, want 0: the handle says it is gone", n)
	}
	l, err = ReadLimits(h, want)
	if err != nil {
		t.Fatal(err)
	}
	if !l.Chain[0].Removed {
		t.Error("removed child not marked removed")
	}
	checkValue(t, "effective after removal", l.Effective, ptr(mb200))
}

// TestHostKeepBeforeRemoval: a cgroup kept while it exists resolves after
// its removal, without a walk; one not kept does not (the daemon keeps a
// kill's cgroups as its record is read, and a container's cgroup may be
// removed before the kill leaves the queue).
func TestHostKeepBeforeRemoval(t *testing.T) {
	h := hostHierarchy(t)
	oh := oomtest.Hierarchy{Root: h.Root, V2: h.V2}
	kept := oomtest.NewCgroup(t, oh, nil, "kept", mb200)
	other := oomtest.NewCgroup(t, oh, nil, "not-kept", mb200)
	want := relPath(t, h, kept.Path)

	r := NewResolver(h)
	if !r.handles {
		t.Fatalf("%s not seen as cgroupfs", h.Root)
	}
	r.Keep(kept.ID)
	for _, cg := range []*oomtest.Cgroup{kept, other} {
		if err := cg.Remove(); err != nil {
			t.Fatal(err)
		}
	}
	if got, ok := r.Path(kept.ID); !ok || got != want {
		t.Errorf("kept, then removed: Path = %q, %v; want %q", got, ok, want)
	}
	if got, ok := r.Path(other.ID); ok {
		t.Errorf("not kept, removed: found at %q", got)
	}
	if n := walks(r); n != 0 {
		t.Errorf("%d walks, want 0", n)
	}
}

// TestHostV2Handles resolves a scratch cgroup on the v2 hierarchy by file
// handle; it needs no controller, so it runs where v2 carries no memory.
func TestHostV2Handles(t *testing.T) {
	oomtest.RequireRoot(t)
	root := "/sys/fs/cgroup"
	if !fileExists(filepath.Join(root, "cgroup.controllers")) {
		root = "/sys/fs/cgroup/unified"
	}
	if !onCgroupfs(root) || !fileExists(filepath.Join(root, "cgroup.controllers")) {
		t.Skip("needs cgroup v2 at /sys/fs/cgroup or /sys/fs/cgroup/unified")
	}
	dir := filepath.Join(root, fmt.Sprintf("oomtrace-test-cgroups-v2-%d", os.Getpid()))
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := os.Remove(dir); err != nil && !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("cleaning up: %v", err)
		}
	})
	r := NewResolver(Hierarchy{Root: root, V2: true})
	want := "/" + filepath.Base(dir)
	if got, ok := r.Path(inode(t, dir)); !ok || got != want || walks(r) != 0 {
		t.Errorf("Path = %q, %v after %d walks; want %q by handle", got, ok, walks(r), want)
	}
}

func fileExists(p string) bool { _, err := os.Stat(p); return err == nil }

// BenchmarkHostWalk times a full walk of the real memory hierarchy with n
// extra scratch cgroups in it: what Refresh and a rate-limited rescan cost.
//
//	go test -run '^$' -bench HostWalk ./enrich/cgroups/
func BenchmarkHostWalk(b *testing.B) {
	h := hostHierarchy(b)
	for _, n := range []int{0, 500, 2000} {
		b.Run(fmt.Sprintf("extra=%d", n), func(b *testing.B) {
			scratchTree(b, h, n)
			var found int
			for b.Loop() {
				ids, err := walkIDs(h.Root)
				if err != nil {
					b.Fatal(err)
				}
				found = len(ids)
			}
			b.ReportMetric(float64(found), "cgroups")
		})
	}
}

// BenchmarkHostPathByHandle times resolving one id with open_by_handle_at.
func BenchmarkHostPathByHandle(b *testing.B) {
	h := hostHierarchy(b)
	cg := oomtest.NewCgroup(b, oomtest.Hierarchy{Root: h.Root, V2: h.V2}, nil, "cgroups-bench", 0)
	for b.Loop() {
		if p, err := pathByHandle(h.Root, cg.ID); err != nil || !strings.HasSuffix(p, filepath.Base(cg.Path)) {
			b.Fatalf("%q, %v", p, err)
		}
	}
}

// scratchTree makes n empty cgroups, 50 per directory, under a scratch
// parent that the benchmark's cleanup removes with them.
func scratchTree(b *testing.B, h Hierarchy, n int) {
	if n == 0 {
		return
	}
	parent := oomtest.NewCgroup(b, oomtest.Hierarchy{Root: h.Root, V2: h.V2}, nil, fmt.Sprintf("cgroups-walk%d", n), 0)
	for i := range n {
		dir := filepath.Join(parent.Path, fmt.Sprintf("g%d", i/50))
		if i%50 == 0 {
			if err := os.Mkdir(dir, 0o755); err != nil {
				b.Fatal(err)
			}
		}
		if err := os.Mkdir(filepath.Join(dir, fmt.Sprintf("c%d", i)), 0o755); err != nil {
			b.Fatal(err)
		}
	}
}
