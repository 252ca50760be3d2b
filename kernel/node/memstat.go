package node

import (
	"bytes"
	"path/filepath"
	"strconv"

	"github.com/oomtrace/oomtrace/internal/kfile"
	"github.com/oomtrace/oomtrace/kernel/cgroupfs"
)

// ReadMemStat is the node's memory by kind, from /proc/meminfo under the
// names of a memory cgroup's memory.stat (a global OOM's scope is the
// whole node): anon AnonPages; file Cached + Buffers (page cache, shmem
// included, as a memcg's file); kernel Slab + KernelStack + PageTables +
// Percpu; slab, shmem, file_dirty and file_writeback Slab, Shmem, Dirty
// and Writeback. sock has no meminfo line: nil.
func ReadMemStat(procRoot string, buf []byte) (cgroupfs.MemStat, error) {
	data, err := kfile.ReadFile(filepath.Join(procRoot, "meminfo"), buf)
	if err != nil {
		return cgroupfs.MemStat{}, err
	}
	kb := map[string]int64{}
	for line := range bytes.Lines(data) {
		name, rest, ok := bytes.Cut(line, []byte{':'})
		if !ok {
			continue
		}
		f := bytes.Fields(rest)
		if len(f) != 2 || string(f[1]) != "kB" {
			continue
		}
		if v, err := strconv.ParseInt(string(f[0]), 10, 64); err == nil {
			kb[string(name)] = v
		}
	}
	sum := func(names ...string) *int64 {
		var total int64
		for _, n := range names {
			v, ok := kb[n]
			if !ok {
				return nil
			}
			total += v
		}
		total <<= 10
		return &total
	}
	return cgroupfs.MemStat{
		Anon: sum("AnonPages"), File: sum("Cached", "Buffers"), Kernel: sum("Slab", "KernelStack", "PageTables", "Percpu"),
		Slab: sum("Slab"), Shmem: sum("Shmem"), FileDirty: sum("Dirty"), FileWriteback: sum("Writeback"),
	}, nil
}
