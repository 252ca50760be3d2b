// Package node reads the machine-wide settings that shape OOM behaviour:
// overcommit and OOM sysctls, RAM and swap. They go into the startup line and
// onto every global OOM, read fresh each time (an admin may change them).
package node

import (
	"fmt"
	"github.com/oomtrace/oomtrace/kernel/procfs"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/oomtrace/oomtrace/internal/kfile"
	"golang.org/x/sys/unix"
)

// Context is a snapshot of the node's OOM-relevant settings.
type Context struct {
	OvercommitMemory      int  // vm.overcommit_memory: 0 heuristic, 1 always, 2 never
	OvercommitRatio       int  // vm.overcommit_ratio, percent
	PanicOnOOM            int  // vm.panic_on_oom
	OOMKillAllocatingTask bool // vm.oom_kill_allocating_task
	OOMDumpTasks          bool // vm.oom_dump_tasks
	Swappiness            int  // vm.swappiness: a v2 memcg's, for mem_cgroup_get_max()
	MemTotalBytes         uint64
	SwapTotalBytes        uint64
}

// MachinePages is RAM + swap in pages: the totalpages of a global OOM and of
// /proc/PID/oom_score.
func (c Context) MachinePages(pageSize uint64) uint64 {
	return (c.MemTotalBytes + c.SwapTotalBytes) / pageSize
}

// Read takes the snapshot from /proc. procRoot is "/proc" except in tests.
func Read(procRoot string) (Context, error) {
	var c Context
	var errs []string
	// One descriptor of the directory, then openat and a single read per
	// value: no path walk through /proc for each, no fstat.
	dir := filepath.Join(procRoot, "sys/vm")
	dfd, derr := kfile.Open(dir, unix.O_PATH|unix.O_DIRECTORY)
	if derr == nil {
		defer kfile.Close(dfd)
	}
	var buf [32]byte
	sysctl := func(name string) int {
		if derr != nil {
			errs = append(errs, fmt.Sprintf("vm.%s: opening %s: %v", name, dir, derr))
			return 0
		}
		data, err := kfile.ReadAt(dfd, name, buf[:])
		if err != nil {
			errs = append(errs, fmt.Sprintf("vm.%s: %v", name, err))
			return 0
		}
		n, err := strconv.Atoi(strings.TrimSpace(string(data)))
		if err != nil {
			errs = append(errs, fmt.Sprintf("vm.%s: %v", name, err))
		}
		return n
	}
	c.OvercommitMemory = sysctl("overcommit_memory")
	c.OvercommitRatio = sysctl("overcommit_ratio")
	c.PanicOnOOM = sysctl("panic_on_oom")
	c.OOMKillAllocatingTask = sysctl("oom_kill_allocating_task") != 0
	c.OOMDumpTasks = sysctl("oom_dump_tasks") != 0
	c.Swappiness = sysctl("swappiness")

	if procRoot == "/proc" {
		// sysinfo(2) gives the same totals (totalram_pages and
		// total_swap_pages, in bytes) in one call, where reading
		// /proc/meminfo makes the kernel compute some fifty figures:
		// this runs between a kill and its line.
		var si unix.Sysinfo_t
		if err := kfile.Sysinfo(&si); err != nil {
			errs = append(errs, fmt.Sprintf("sysinfo: %v", err))
		} else {
			c.MemTotalBytes = si.Totalram * uint64(si.Unit)
			c.SwapTotalBytes = si.Totalswap * uint64(si.Unit)
		}
	} else if err := readMeminfo(procRoot, &c); err != nil {
		errs = append(errs, err.Error())
	}
	if c.MemTotalBytes == 0 {
		errs = append(errs, "no MemTotal in meminfo")
	}
	if len(errs) > 0 {
		return c, fmt.Errorf("reading node context: %s", strings.Join(errs, "; "))
	}
	return c, nil
}

// readMeminfo takes MemTotal and SwapTotal from procRoot's meminfo.
func readMeminfo(procRoot string, c *Context) error {
	m, err := procfs.ReadMeminfo(procRoot, nil)
	if err != nil {
		return err
	}
	c.MemTotalBytes, c.SwapTotalBytes = m["MemTotal"], m["SwapTotal"]
	return nil
}
