package cgroupfs

import (
	"errors"
	"os"
	"strings"
	"testing"
)

// Mount tables as this project's machines have them (trimmed).
const (
	mountsV1 = `31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
`
	mountsV2 = `24 1 0:22 / /run rw - tmpfs tmpfs rw
29 24 0:26 / /run/my\040cgroups rw,nosuid shared:9 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot
`
	// A v1 mount whose options merely contain the word.
	mountsNone = `35 31 0:32 / /cg/x rw - cgroup cgroup rw,memory_fake,cpu
41 31 0:38 / /cg/unified rw - cgroup2 cgroup2 rw
`
)

func TestFindInMountinfo(t *testing.T) {
	hasMemory := func(root string) bool { return root == "/run/my cgroups" }
	for _, tc := range []struct {
		name, mounts string
		want         Hierarchy
		err          error
	}{
		{"v1 memory mount; v2 without memory", mountsV1, Hierarchy{Root: "/sys/fs/cgroup/memory"}, nil},
		{"v2 with memory, escaped path", mountsV2, Hierarchy{Root: "/run/my cgroups", V2: true}, nil},
		{"none", mountsNone, Hierarchy{}, errNoMemoryHierarchy},
		{"garbage", "x y z\n\n- - -\n", Hierarchy{}, errNoMemoryHierarchy},
	} {
		got, err := findInMountinfo(strings.NewReader(tc.mounts), hasMemory)
		if got != tc.want || !errors.Is(err, tc.err) {
			t.Errorf("%s: got %+v, %v; want %+v, %v", tc.name, got, err, tc.want, tc.err)
		}
	}
}

func TestV2HasMemory(t *testing.T) {
	root := t.TempDir()
	for dir, controllers := range map[string]string{"/with": "cpuset cpu io memory pids\n", "/without": "cpu memory_x\n"} {
		if err := os.MkdirAll(root+dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(root+dir+"/cgroup.controllers", []byte(controllers), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if !v2HasMemory(root + "/with") {
		t.Error("memory not seen")
	}
	if v2HasMemory(root+"/without") || v2HasMemory(root+"/absent") {
		t.Error("memory seen where it is not")
	}
}
