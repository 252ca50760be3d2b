package ledger

import (
	"github.com/oomtrace/oomtrace/internal/kfile"
	"github.com/oomtrace/oomtrace/kernel/cgroupfs"
)

// CgroupCounts reads every memory cgroup's oom_kill under h (the root
// left out: the machine's count is vmstat's): v1 memory.oom_control, v2
// memory.events.local where the kernel has it (the cgroup's own kills;
// memory.events adds its descendants'), else memory.events. Cgroups
// removed during the walk are left out.
func CgroupCounts(h cgroupfs.Hierarchy) ([]Cgroup, error) {
	names := []string{h.Files().Events}
	if h.V2 {
		names = []string{"memory.events.local", "memory.events"}
	}
	var out []Cgroup
	buf := make([]byte, 512)
	err := cgroupfs.Walk(h.Root, struct{}{}, func(d cgroupfs.Dir, _ struct{}) (struct{}, error) {
		if d.Depth == 0 {
			return struct{}{}, nil
		}
		for _, name := range names {
			data, err := kfile.ReadAt(d.Fd, name, buf)
			if cgroupfs.Removed(err) {
				continue
			}
			if err != nil {
				return struct{}{}, nil // unreadable: not counted
			}
			if n, ok := kfile.Keyed(data, "oom_kill"); ok {
				out = append(out, Cgroup{Path: d.Path, ID: d.ID, OOMKill: uint64(n)})
			}
			break
		}
		return struct{}{}, nil
	}, nil)
	return out, err
}
