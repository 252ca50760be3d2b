package cgroupfs

import (
	"bytes"
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
// file leaves out. buf is scratch, 8 KiB or more; files keeps the files
// open for the next read (nil: none).
func (h Hierarchy) ReadMemStat(files *OpenFiles, dir string, buf []byte) (MemStat, error) {
	data, err := files.Read(dir+"/memory.stat", buf)
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
			v, err := readValue(files, dir+"/"+kv.file)
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

// ReadMemEvents reads the event counters of the memory cgroup at dir, as
// ReadMemStat does.
func (h Hierarchy) ReadMemEvents(files *OpenFiles, dir string, buf []byte) (MemEvents, error) {
	var e MemEvents
	var err error
	if h.V2 {
		data, err := files.Read(dir+"/memory.events", buf)
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
	if e.Failcnt, err = readValue(files, dir+"/memory.failcnt"); err != nil {
		return e, err
	}
	if e.MemswFailcnt, err = readValue(files, dir+"/memory.memsw.failcnt"); err != nil && !errors.Is(err, unix.ENOENT) {
		return e, err
	}
	data, err := files.Read(dir+"/memory.oom_control", buf)
	if err != nil {
		return e, err
	}
	if v, ok := kfile.Keyed(data, "oom_kill"); ok { // 4.13+
		e.OOMKill = &v
	}
	return e, nil
}

// readValue reads a one-value file (a byte count, a counter) as
// ReadValueAt does.
func readValue(files *OpenFiles, path string) (*int64, error) {
	var buf [32]byte // the longest value, v1's unlimited, is 20 digits
	data, err := files.Read(path, buf[:])
	if err != nil {
		return nil, err
	}
	return ParseValue(string(bytes.TrimSpace(data)))
}
