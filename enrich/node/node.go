// Package node reads the machine-wide settings that shape OOM behaviour:
// overcommit and OOM sysctls, RAM and swap. They go into the startup line and
// onto every global OOM, read fresh each time (an admin may change them).
package node

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Context is a snapshot of the node's OOM-relevant settings.
type Context struct {
	OvercommitMemory      int  // vm.overcommit_memory: 0 heuristic, 1 always, 2 never
	OvercommitRatio       int  // vm.overcommit_ratio, percent
	PanicOnOOM            int  // vm.panic_on_oom
	OOMKillAllocatingTask bool // vm.oom_kill_allocating_task
	OOMDumpTasks          bool // vm.oom_dump_tasks
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
	sysctl := func(name string) int {
		data, err := os.ReadFile(filepath.Join(procRoot, "sys/vm", name))
		if err != nil {
			errs = append(errs, err.Error())
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

	data, err := os.ReadFile(filepath.Join(procRoot, "meminfo"))
	if err != nil {
		errs = append(errs, err.Error())
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) != 3 || f[2] != "kB" {
			continue
		}
		kb, _ := strconv.ParseUint(f[1], 10, 64)
		switch f[0] {
		case "MemTotal:":
			c.MemTotalBytes = kb * 1024
		case "SwapTotal:":
			c.SwapTotalBytes = kb * 1024
		}
	}
	if c.MemTotalBytes == 0 {
		errs = append(errs, "no MemTotal in meminfo")
	}
	if len(errs) > 0 {
		return c, fmt.Errorf("reading node context: %s", strings.Join(errs, "; "))
	}
	return c, nil
}
