// Package cgroupfs reads the kernel's memory cgroup hierarchy, for the
// enricher, rank, verify and the workloads alike: where it is mounted, the
// names of its files in each cgroup version (Files), their values
// (ReadValueAt), a walk of every cgroup (Walk) and mem_cgroup_get_max()
// from a memcg's files (MemcgMax), so that no reader of cgroupfs spells
// any of these again.
package cgroupfs

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// Hierarchy is where the memory controller is mounted.
type Hierarchy struct {
	Root string // mount point, e.g. /sys/fs/cgroup (v2) or /sys/fs/cgroup/memory (v1)
	V2   bool
}

// Dir is the directory of the cgroup at path (relative to the root, "/" for
// the root itself).
func (h Hierarchy) Dir(path string) string { return filepath.Join(h.Root, path) }

// FindMemoryHierarchy locates the memory controller: v2 at /sys/fs/cgroup
// when it is enabled there, else v1 at /sys/fs/cgroup/memory, else any
// mount in /proc/self/mountinfo that carries it (distributions and
// containers mount cgroups in other places).
func FindMemoryHierarchy() (Hierarchy, error) {
	if v2HasMemory("/sys/fs/cgroup") {
		return Hierarchy{Root: "/sys/fs/cgroup", V2: true}, nil
	}
	if _, err := os.Stat("/sys/fs/cgroup/memory/memory.limit_in_bytes"); err == nil {
		return Hierarchy{Root: "/sys/fs/cgroup/memory"}, nil
	}
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return Hierarchy{}, fmt.Errorf("finding the memory cgroup hierarchy: %w", err)
	}
	defer f.Close()
	h, err := findInMountinfo(f, v2HasMemory)
	if err != nil {
		return Hierarchy{}, fmt.Errorf("finding the memory cgroup hierarchy: %w", err)
	}
	return h, nil
}

var errNoMemoryHierarchy = errors.New("no cgroup v2 mount with the memory controller and no v1 memory mount")

// findInMountinfo picks the first cgroup2 mount whose cgroup.controllers
// lists memory (asked through hasMemory: mountinfo does not say), or the
// first v1 mount with the memory super option.
func findInMountinfo(r io.Reader, hasMemory func(root string) bool) (Hierarchy, error) {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		// id parent major:minor root mountpoint options [optional...] - fstype source superoptions
		f := strings.Fields(sc.Text())
		sep := slices.Index(f[min(6, len(f)):], "-") + 6
		if sep < 6 || sep+3 >= len(f) {
			continue
		}
		mnt := unescapeMountinfo(f[4])
		switch f[sep+1] {
		case "cgroup2":
			if hasMemory(mnt) {
				return Hierarchy{Root: mnt, V2: true}, nil
			}
		case "cgroup":
			for _, o := range strings.Split(f[sep+3], ",") {
				if o == "memory" {
					return Hierarchy{Root: mnt}, nil
				}
			}
		}
	}
	if err := sc.Err(); err != nil {
		return Hierarchy{}, fmt.Errorf("reading mountinfo: %w", err)
	}
	return Hierarchy{}, errNoMemoryHierarchy
}

func v2HasMemory(root string) bool {
	data, err := os.ReadFile(filepath.Join(root, "cgroup.controllers"))
	if err != nil {
		return false
	}
	for _, c := range strings.Fields(string(data)) {
		if c == "memory" {
			return true
		}
	}
	return false
}

var octalEscape = regexp.MustCompile(`\\[0-7]{3}`)

// unescapeMountinfo undoes the kernel's \ooo octal escapes of space, tab,
// newline and backslash in mountinfo paths.
func unescapeMountinfo(s string) string {
	return octalEscape.ReplaceAllStringFunc(s, func(e string) string {
		b, _ := strconv.ParseUint(e[1:], 8, 8)
		return string([]byte{byte(b)})
	})
}
