package main

import (
	"path/filepath"
	"runtime"
	"time"

	"github.com/oomtrace/oomtrace/internal/oomtest"
	"github.com/oomtrace/oomtrace/kernel/cgroupfs"
	"github.com/oomtrace/oomtrace/kernel/psi"
	"github.com/oomtrace/oomtrace/rank"
	"golang.org/x/sys/unix"
)

// contextReads measures, in the storm, what the kernel files behind issue
// 13's per-kill context cost by themselves: after each kill it reads what
// the daemon reads at a kill in that cgroup (memory.stat, the event
// counters, the pressure file, and the cgroup's processes for oom.memcg.top
// at most every 100 ms, as the daemon shares them), with the daemon's own
// readers, on one locked thread whose CPU time it sums. Of the line's Go
// code only the readers' parsing is in it (no enrichment, no encoding): it
// is, mostly, what any tracer reporting that context at the kill pays the
// kernel.
type contextReads struct {
	kills chan struct{}
	done  chan struct{}
	cpu   time.Duration
	n     int
	err   error
}

// startContextReads reads cg's context once per value sent on kills, until
// kills is closed; stop returns the reads' CPU time and count.
func startContextReads(h oomtest.Hierarchy, cg *oomtest.Cgroup) *contextReads {
	c := &contextReads{kills: make(chan struct{}, 1024), done: make(chan struct{})}
	go func() {
		defer close(c.done)
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		var files cgroupfs.OpenFiles
		defer files.Close()
		procFiles := rank.NewProcFiles()
		defer procFiles.Close()
		rel, err := filepath.Rel(h.Root, cg.Path)
		if err != nil {
			c.err = err
			return
		}
		rel = "/" + rel
		pressure := "/proc/pressure/memory"
		if h.V2 {
			pressure = filepath.Join(cg.Path, "memory.pressure")
		}
		src := rank.Source{Hierarchy: h, ProcRoot: "/proc", Files: procFiles}
		buf := make([]byte, 16<<10)
		var procsAt time.Time
		for range c.kills {
			t0 := threadCPU()
			if _, err := h.ReadMemStat(&files, cg.Path, buf); err != nil && c.err == nil {
				c.err = err
			}
			if _, err := h.ReadMemEvents(&files, cg.Path, buf); err != nil && c.err == nil {
				c.err = err
			}
			// A kernel without PSI has no file: the daemon reports why, at no cost.
			_, _ = psi.Read(&files, pressure, buf)
			if now := time.Now(); now.Sub(procsAt) >= 100*time.Millisecond {
				procsAt = now
				if _, err := src.Processes(rel); err != nil && c.err == nil {
					c.err = err
				}
			}
			c.cpu += threadCPU() - t0
			c.n++
		}
	}()
	return c
}

// killed asks for one read; it never blocks the storm.
func (c *contextReads) killed() {
	select {
	case c.kills <- struct{}{}:
	default:
	}
}

func (c *contextReads) stop() (time.Duration, int, error) {
	close(c.kills)
	<-c.done
	return c.cpu, c.n, c.err
}

func threadCPU() time.Duration {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_THREAD_CPUTIME_ID, &ts); err != nil {
		return 0
	}
	return time.Duration(ts.Nano())
}
