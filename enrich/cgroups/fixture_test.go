package cgroups

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// v1Unlimited is what an unlimited v1 counter reads on x86-64.
const v1Unlimited = "9223372036854771712\n"

// files is the content of one cgroup directory: file name → content.
type files map[string]string

// fixture builds a fake cgroup hierarchy in a temporary directory: one
// directory per cgroup path, holding the given files.
func fixture(t *testing.T, cgroups map[string]files) string {
	t.Helper()
	root := t.TempDir()
	for p, fs := range cgroups {
		dir := filepath.Join(root, p)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		for name, data := range fs {
			if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	return root
}

// inode is the id the kernel would report for the cgroup at dir.
func inode(t *testing.T, dir string) uint64 {
	t.Helper()
	var st syscall.Stat_t
	if err := syscall.Stat(dir, &st); err != nil {
		t.Fatal(err)
	}
	return st.Ino
}

func v1Memcg(limit, memsw, usage, maxUsage string) files {
	f := files{"memory.limit_in_bytes": limit, "memory.usage_in_bytes": usage, "memory.max_usage_in_bytes": maxUsage}
	if memsw != "" {
		f["memory.memsw.limit_in_bytes"] = memsw
	}
	return f
}

func v2Memcg(max, high, swapMax, current, swapCurrent string) files {
	return files{"memory.max": max, "memory.high": high, "memory.swap.max": swapMax,
		"memory.current": current, "memory.swap.current": swapCurrent}
}
