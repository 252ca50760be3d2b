package node

import (
	"github.com/oomtrace/oomtrace/kernel/cgroupfs"
	"github.com/oomtrace/oomtrace/kernel/procfs"
)

// ReadMemStat is the node's memory by kind, from /proc/meminfo under the
// names of a memory cgroup's memory.stat (a global OOM's scope is the
// whole node): anon AnonPages; file Cached + Buffers (page cache, shmem
// included, as a memcg's file); kernel Slab + KernelStack + PageTables +
// Percpu; slab, shmem, file_dirty and file_writeback Slab, Shmem, Dirty
// and Writeback. sock has no meminfo line: nil.
func ReadMemStat(procRoot string, buf []byte) (cgroupfs.MemStat, error) {
	m, err := procfs.ReadMeminfo(procRoot, buf)
	if err != nil {
		return cgroupfs.MemStat{}, err
	}
	sum := func(names ...string) *int64 {
		var total int64
		for _, n := range names {
			v, ok := m[n]
			if !ok {
				return nil
			}
			total += int64(v)
		}
		return &total
	}
	return cgroupfs.MemStat{
		Anon: sum("AnonPages"), File: sum("Cached", "Buffers"), Kernel: sum("Slab", "KernelStack", "PageTables", "Percpu"),
		Slab: sum("Slab"), Shmem: sum("Shmem"), FileDirty: sum("Dirty"), FileWriteback: sum("Writeback"),
	}, nil
}
