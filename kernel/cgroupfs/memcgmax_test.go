package cgroupfs

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

const (
	mib      = 1 << 20
	page     = 4096
	v1Max    = "9223372036854771712\n" // an unlimited v1 counter
	limit64  = "67108864\n"
	nodeSwap = 16 * mib // the machine's swap
)

// readMemcgMax reads what TotalPages needs from a fixture memcg, through
// the file table, as rank and the enricher do.
func readMemcgMax(t *testing.T, h Hierarchy, path string) MemcgMax {
	t.Helper()
	dfd, err := unix.Open(h.Dir(path), unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(dfd)
	f := h.Files()
	var m MemcgMax
	for name, dst := range map[string]**int64{f.SwapLimit: &m.SwapLimit, f.MemswLimit: &m.MemswLimit, f.Swappiness: &m.Swappiness} {
		if name == "" {
			continue
		}
		v, err := ReadValueAt(dfd, name)
		if err != nil && !errors.Is(err, unix.ENOENT) {
			t.Fatal(err)
		}
		*dst = v
	}
	limit, err := ReadValueAt(dfd, f.Limit)
	if err != nil || limit == nil {
		t.Fatalf("%s: limit %v, %v", path, limit, err)
	}
	m.Limit = *limit
	return m
}

// mkTree writes a fixture hierarchy: path → file → content.
func mkTree(t *testing.T, tree map[string]map[string]string) string {
	t.Helper()
	root := t.TempDir()
	for p, files := range tree {
		for name, data := range files {
			file := filepath.Join(root, p, name)
			if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(file, []byte(data), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	return root
}

// The same memcgs, as v1 and as v2 show them, give the same totalpages:
// v1's memsw counts the memory limit too, v2's swap.max swap alone; v1's
// own swappiness overrides the node's, v2 has only the node's.
func TestMemcgMaxOnFixtures(t *testing.T) {
	v1 := Hierarchy{Root: mkTree(t, map[string]map[string]string{
		"/unlimited": {"memory.limit_in_bytes": limit64, "memory.memsw.limit_in_bytes": v1Max, "memory.swappiness": "60\n"},
		"/small":     {"memory.limit_in_bytes": limit64, "memory.memsw.limit_in_bytes": "71303168\n", "memory.swappiness": "60\n"}, // 64 + 4 MiB
		"/noswap":    {"memory.limit_in_bytes": limit64, "memory.memsw.limit_in_bytes": limit64, "memory.swappiness": "60\n"},
		"/noacct":    {"memory.limit_in_bytes": limit64, "memory.swappiness": "60\n"}, // no swap accounting: no memsw file
		"/sw0":       {"memory.limit_in_bytes": limit64, "memory.memsw.limit_in_bytes": v1Max, "memory.swappiness": "0\n"},
	})}
	v2 := Hierarchy{V2: true, Root: mkTree(t, map[string]map[string]string{
		"/unlimited": {"memory.max": limit64, "memory.swap.max": "max\n"},
		"/small":     {"memory.max": limit64, "memory.swap.max": "4194304\n"},
		"/noswap":    {"memory.max": limit64, "memory.swap.max": "0\n"},
		"/noacct":    {"memory.max": limit64}, // no CONFIG_MEMCG_SWAP
		// A stray file v2 does not have: it must not count.
		"/sw0": {"memory.max": limit64, "memory.swap.max": "max\n", "memory.swappiness": "0\n"},
	})}
	limit := uint64(64 * mib / page)
	for _, tc := range []struct {
		path           string
		nodeSwappiness int
		machineSwap    uint64
		wantV1, wantV2 uint64
	}{
		{"/unlimited", 60, nodeSwap, limit + nodeSwap/page, limit + nodeSwap/page},
		{"/unlimited", 60, 0, limit, limit},
		{"/small", 60, nodeSwap, limit + 4*mib/page, limit + 4*mib/page},
		{"/small", 60, 2 * mib, limit + 2*mib/page, limit + 2*mib/page}, // the machine's swap caps
		{"/noswap", 60, nodeSwap, limit, limit},
		{"/noacct", 60, nodeSwap, limit + nodeSwap/page, limit + nodeSwap/page},
		// v1: the memcg's own 0 wins over the node's 60; v2: the node's 60.
		{"/sw0", 60, nodeSwap, limit, limit + nodeSwap/page},
		// v1: the memcg's own 60 wins over the node's 0; v2: the node's 0.
		{"/unlimited", 0, nodeSwap, limit + nodeSwap/page, limit},
	} {
		for _, v := range []struct {
			h    Hierarchy
			want uint64
		}{{v1, tc.wantV1}, {v2, tc.wantV2}} {
			if got := readMemcgMax(t, v.h, tc.path).TotalPages(tc.nodeSwappiness, tc.machineSwap, page); got != v.want {
				t.Errorf("v2=%t %s, vm.swappiness %d, swap %d MiB: totalpages %d, want %d",
					v.h.V2, tc.path, tc.nodeSwappiness, tc.machineSwap/mib, got, v.want)
			}
		}
	}
}

// A v1 read racing a limit change may see memsw below the memory limit:
// no swap, not unlimited swap.
func TestMemcgMaxMemswBelowLimit(t *testing.T) {
	memsw := int64(32 * mib)
	m := MemcgMax{Limit: 64 * mib, MemswLimit: &memsw}
	if got := m.TotalPages(60, nodeSwap, page); got != 64*mib/page {
		t.Errorf("totalpages %d, want the limit alone %d", got, 64*mib/page)
	}
}
