package rank

import (
	"fmt"

	"github.com/oomtrace/oomtrace/kernel/cgroupfs"
)

// Source is where to read: the memory cgroup hierarchy and /proc. Both are
// injectable so that tests run on fixture trees.
type Source struct {
	Hierarchy cgroupfs.Hierarchy
	ProcRoot  string // "/proc" on a live system
	// Files (nil: none) keeps the /proc files Processes reads open for the
	// next call.
	Files *ProcFiles
	// Skip (nil: none) names processes Processes leaves out unread.
	Skip func(pid int) bool
}

// HostSource finds this machine's memory hierarchy.
func HostSource() (Source, error) {
	h, err := cgroupfs.FindMemoryHierarchy()
	if err != nil {
		return Source{}, err
	}
	return Source{Hierarchy: h, ProcRoot: "/proc"}, nil
}

func (s Source) dir(path string) string {
	if path == "/" {
		return s.Hierarchy.Root
	}
	return s.Hierarchy.Root + path
}

// node is one cgroup of a walk, in pre-order: the subtree of nodes[i] is
// nodes[i:nodes[i].end]. Byte counts are -1 when unlimited.
type node struct {
	path  string // relative to the root, "/" for the root itself
	id    uint64 // the directory's inode: the cgroup id the kernel reports
	end   int
	limit int64 // its own memory limit
	eff   int64 // the smallest limit from the root down to here
	effAt int   // index of the cgroup holding eff (the innermost on a tie), -1 when none
	usage int64 // read for the root and limited cgroups only, -1 otherwise
}

// walk lists every cgroup with its limits, and the usage of those that
// have one. Effective limits are carried down from the parent as the walk
// descends, so each limit file is read once per walk, not once per
// descendant as ReadLimits on every cgroup would; files are read relative
// to their directory's descriptor (see cgroupfs.Walk). Cgroups removed
// meanwhile are left out.
func (s Source) walk(r *reader) ([]node, error) {
	f := s.Hierarchy.Files()
	var nodes []node
	// Each cgroup's enter hands its index in nodes to its children.
	enter := func(d cgroupfs.Dir, parent int) (int, error) {
		i := len(nodes)
		n := node{path: d.Path, id: d.ID, eff: -1, effAt: -1, usage: -1}
		var err error
		if n.limit, err = r.intAt(d.Fd, f.Limit); err != nil {
			return 0, err
		}
		if parent >= 0 {
			n.eff, n.effAt = nodes[parent].eff, nodes[parent].effAt
		}
		if n.limit >= 0 && (n.eff < 0 || n.limit <= n.eff) {
			n.eff, n.effAt = n.limit, i
		}
		if n.limit >= 0 || i == 0 {
			if n.usage, err = r.intAt(d.Fd, f.Usage); err != nil {
				return 0, err
			}
		}
		nodes = append(nodes, n)
		return i, nil
	}
	leave := func(i int, gone bool) {
		if gone {
			nodes = nodes[:i] // removed before it was listed, as if before it was read
			return
		}
		nodes[i].end = len(nodes)
	}
	if err := cgroupfs.Walk(s.Hierarchy.Root, -1, enter, leave); err != nil {
		return nil, fmt.Errorf("walking memory cgroups: %w", err)
	}
	return nodes, nil
}
