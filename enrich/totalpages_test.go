package enrich

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/oomtrace/oomtrace/enrich/cgroups"
	"github.com/oomtrace/oomtrace/kernel/node"
)

// memcgTotalPages on limits read from fixture trees: the hit memcg's swap
// limit of its version and its own swappiness (v1) count, an ancestor's do
// not.
func TestMemcgTotalPages(t *testing.T) {
	const mib = 1 << 20
	page := uint64(os.Getpagesize())
	n := node.Context{Swappiness: 60, MemTotalBytes: 1 << 30, SwapTotalBytes: 16 * mib}
	for _, tc := range []struct {
		name string
		v2   bool
		tree map[string]map[string]string
		want uint64
	}{
		{"v1 memsw is memory+swap", false, map[string]map[string]string{
			"/":      {"memory.limit_in_bytes": "9223372036854771712\n"},
			"/a":     {"memory.limit_in_bytes": "9223372036854771712\n", "memory.memsw.limit_in_bytes": "9223372036854771712\n"},
			"/a/hit": {"memory.limit_in_bytes": "67108864\n", "memory.memsw.limit_in_bytes": "71303168\n", "memory.swappiness": "60\n"},
		}, (64 + 4) * mib / page},
		{"v1 the memcg's own swappiness 0", false, map[string]map[string]string{
			"/":      {"memory.limit_in_bytes": "9223372036854771712\n"},
			"/a":     {"memory.limit_in_bytes": "9223372036854771712\n", "memory.swappiness": "60\n"},
			"/a/hit": {"memory.limit_in_bytes": "67108864\n", "memory.memsw.limit_in_bytes": "9223372036854771712\n", "memory.swappiness": "0\n"},
		}, 64 * mib / page},
		{"v2 swap.max is swap alone", true, map[string]map[string]string{
			"/":      {},
			"/a":     {"memory.max": "max\n", "memory.swap.max": "0\n"},
			"/a/hit": {"memory.max": "67108864\n", "memory.swap.max": "4194304\n"},
		}, (64 + 4) * mib / page},
		{"v2 unlimited swap: the machine's", true, map[string]map[string]string{
			"/":      {},
			"/a/hit": {"memory.max": "67108864\n", "memory.swap.max": "max\n"},
		}, (64 + 16) * mib / page},
	} {
		root := t.TempDir()
		for p, files := range tc.tree {
			if err := os.MkdirAll(filepath.Join(root, p), 0o755); err != nil {
				t.Fatal(err)
			}
			for name, data := range files {
				if err := os.WriteFile(filepath.Join(root, p, name), []byte(data), 0o644); err != nil {
					t.Fatal(err)
				}
			}
		}
		h := cgroups.Hierarchy{Root: root, V2: tc.v2}
		limits, err := cgroups.ReadLimits(h, "/a/hit")
		if err != nil {
			t.Fatal(err)
		}
		hit, ok := limits.HitLimit("/a/hit")
		if !ok {
			t.Fatalf("%s: /a/hit not on the chain", tc.name)
		}
		e := New(&h, nil)
		got := e.memcgTotalPages(&Result{Limits: &limits, Hit: &hit}, n)
		if got == nil || *got != tc.want {
			t.Errorf("%s: totalpages %v, want %d", tc.name, got, tc.want)
		}
	}
}
