package cgroupfs

import (
	"errors"
	"os"

	"github.com/oomtrace/oomtrace/internal/kfile"
	"golang.org/x/sys/unix"
)

// MemStat is where a memory cgroup's charge went, bytes, with one set of
// names for both cgroup versions (v2's). Nil: this version or kernel
// does not say.
type MemStat struct {
	Anon, File, Kernel, Slab, Shmem, Sock, FileDirty, FileWriteback *int64
}

// MemEvents are a memory cgroup's event counters: v2's memory.events
// (this cgroup and its descendants), or on v1 the failcnt and the
// oom_kill of memory.oom_control. Nil: this version or kernel lacks it.
type MemEvents struct {
	Low, High, Max, OOM, OOMKill, OOMGroupKill *int64
	// v1 only: memory.failcnt, and memory.memsw.failcnt where swap is
	// accounted (a charge tries the memory+swap counter first, so with
	// both limits alike it is the one that fails).
	Failcnt, MemswFailcnt *int64
}

// statKeys map v2's names to memory.stat's keys per version. v1's are the
// hierarchical totals: an OOM memcg's limit covers its descendants.
var (
	statKeysV2 = [...]string{"anon", "file", "kernel", "slab", "shmem", "sock", "file_dirty", "file_writeback"}
	statKeysV1 = [...]string{"total_rss", "total_cache", "", "", "total_shmem", "", "total_dirty", "total_writeback"}
)

func (s *MemStat) fields() [8]**int64 {
	return [8]**int64{&s.Anon, &s.File, &s.Kernel, &s.Slab, &s.Shmem, &s.Sock, &s.FileDirty, &s.FileWriteback}
}

// ReadMemStat reads the memory cgroup at dir (a directory of h): its
// memory.stat, and on v1 the kernel memory (memory.kmem.usage_in_bytes)
// and socket (memory.kmem.tcp.usage_in_bytes) charges, which v1's stat
// file leaves out. buf is scratch, 8 KiB or more.
func (h Hierarchy) ReadMemStat(dir string, buf []byte) (MemStat, error) {
	dfd, err := kfile.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY)
	if err != nil {
		return MemStat{}, err
	}
	defer kfile.Close(dfd)
	data, err := kfile.ReadAt(dfd, "memory.stat", buf)
	if err != nil {
		return MemStat{}, err
	}
	var s MemStat
	keys := statKeysV2
	if !h.V2 {
		keys = statKeysV1
	}
	for i, f := range s.fields() {
		if keys[i] == "" {
			continue
		}
		if v, ok := kfile.Keyed(data, keys[i]); ok {
			*f = &v
		}
	}
	if !h.V2 {
		for _, kv := range []struct {
			file string
			into **int64
		}{{"memory.kmem.usage_in_bytes", &s.Kernel}, {"memory.kmem.tcp.usage_in_bytes", &s.Sock}} {
			v, err := ReadValueAt(dfd, kv.file)
			if err == nil {
				*kv.into = v
			} else if !errors.Is(err, unix.ENOENT) && !errors.Is(err, os.ErrNotExist) {
				return s, err
			}
		}
	}
	return s, nil
}

var eventKeysV2 = [...]string{"low", "high", "max", "oom", "oom_kill", "oom_group_kill"}

func (e *MemEvents) fields() [6]**int64 {
	return [6]**int64{&e.Low, &e.High, &e.Max, &e.OOM, &e.OOMKill, &e.OOMGroupKill}
}

// ReadMemEvents reads the event counters of the memory cgroup at dir.
func (h Hierarchy) ReadMemEvents(dir string, buf []byte) (MemEvents, error) {
	dfd, err := kfile.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY)
	if err != nil {
		return MemEvents{}, err
	}
	defer kfile.Close(dfd)
	var e MemEvents
	if h.V2 {
		data, err := kfile.ReadAt(dfd, "memory.events", buf)
		if err != nil {
			return e, err
		}
		for i, f := range e.fields() {
			if v, ok := kfile.Keyed(data, eventKeysV2[i]); ok {
				*f = &v
			}
		}
		return e, nil
	}
	if e.Failcnt, err = ReadValueAt(dfd, "memory.failcnt"); err != nil {
		return e, err
	}
	if e.MemswFailcnt, err = ReadValueAt(dfd, "memory.memsw.failcnt"); err != nil && !errors.Is(err, unix.ENOENT) {
		return e, err
	}
	data, err := kfile.ReadAt(dfd, "memory.oom_control", buf)
	if err != nil {
		return e, err
	}
	if v, ok := kfile.Keyed(data, "oom_kill"); ok { // 4.13+
		e.OOMKill = &v
	}
	return e, nil
}
