package integration

import (
	"context"
	"encoding/json"
	"os"
	"testing"
	"time"

	"github.com/oomtrace/oomtrace/daemon"
	"github.com/oomtrace/oomtrace/event"
	"github.com/oomtrace/oomtrace/internal/oomtest"
	"github.com/oomtrace/oomtrace/internal/workload"
)

const tib = 1 << 40

// startAllocDaemon is the daemon with --alloc-refused, and the syscalls it
// hooked; the test fails unless mmap is among them.
func startAllocDaemon(t *testing.T) (*lockedBuffer, func()) {
	t.Helper()
	out, started, stop := startDaemonWith(t, func(c *daemon.Config) { c.Tracer.AllocRefused = true })
	hooked := false
	for _, s := range started.Hooks.AllocRefused {
		hooked = hooked || s == "mmap"
	}
	if !hooked {
		t.Fatalf("mmap's syscall tracepoints not attached: hooks %v, refused %v", started.Hooks.AllocRefused, started.Refused)
	}
	return out, stop
}

// allocLines are the alloc_refused lines of process pid.
func allocLines(t *testing.T, out *lockedBuffer, pid int) []event.AllocRefused {
	var got []event.AllocRefused
	out.lines(t, "alloc_refused", func(b []byte) {
		var a event.AllocRefused
		if err := json.Unmarshal(b, &a); err != nil {
			t.Fatal(err)
		}
		if int(a.Process.Pid) == pid {
			got = append(got, a)
		}
	})
	return got
}

// A 1 TiB anonymous mmap is refused by the overcommit heuristic (mode 0:
// more than RAM + swap) without allocating anything: the line names the
// process, the syscall, the size and the rule, with the numbers.
func TestAllocRefusedMmapHeuristic(t *testing.T) {
	oomtest.RequireRoot(t)
	acct, err := os.ReadFile("/proc/sys/vm/overcommit_memory")
	if err != nil || string(acct) != "0\n" {
		t.Skipf("vm.overcommit_memory is %q here, the test needs the heuristic (0); never changed outside a VM", acct)
	}
	out, stop := startAllocDaemon(t)
	res, err := workload.Refuse{Mmaps: 1, Bytes: tib, Comm: "refuse-mmap"}.Run(context.Background(), os.Args[0])
	if err != nil {
		t.Fatal(err)
	}
	if res.Refused != 1 {
		t.Fatalf("the kernel refused %d of 1 mmaps of 1 TiB", res.Refused)
	}
	stop()
	got := allocLines(t, out, res.Pid)
	if len(got) != 1 {
		t.Fatalf("%d alloc_refused lines for pid %d, want 1", len(got), res.Pid)
	}
	a := got[0]
	if a.Syscall != "mmap" || a.RequestBytes != tib || a.Rule != "heuristic" || a.Process.Comm != "refuse-mmap" || a.Repeats != 1 || a.Ret != -12 {
		t.Errorf("line %+v, want mmap of 1 TiB by refuse-mmap refused by the heuristic, once, ret -ENOMEM", a)
	}
	c := a.Commit
	if c.Mode == nil || *c.Mode != 0 || c.RAMBytes == nil || c.SwapBytes == nil || c.RequestBytes != tib || c.RequestBytes <= *c.RAMBytes+*c.SwapBytes {
		t.Errorf("commit %+v: the numbers do not show request > RAM + swap", c)
	}
	if a.Cgroup.ID == 0 || a.Cgroup.Path == nil {
		t.Errorf("cgroup %+v unresolved (errors %v)", a.Cgroup, a.EnrichErrors)
	}
}

// A loop of 10,000 refusals gives a line a second at most, whose repeats
// add up to what the workload counted itself.
func TestAllocRefusedLoopAggregated(t *testing.T) {
	oomtest.RequireRoot(t)
	out, stop := startAllocDaemon(t)
	start := time.Now()
	res, err := workload.Refuse{Mmaps: 10000, Bytes: tib, Comm: "refuse-loop"}.Run(context.Background(), os.Args[0])
	if err != nil {
		t.Fatal(err)
	}
	elapsed := time.Since(start)
	stop()
	if res.Refused != 10000 {
		t.Fatalf("the kernel refused %d of 10000 mmaps of 1 TiB (%d other)", res.Refused, res.Other)
	}
	got := allocLines(t, out, res.Pid)
	var sum uint64
	for _, a := range got {
		sum += a.Repeats
		if a.Syscall != "mmap" || a.RequestBytes != tib {
			t.Errorf("line %+v", a)
		}
	}
	// One at once, one per second after, one at shutdown.
	if bound := int(elapsed/time.Second) + 2; len(got) > bound || len(got) == 0 {
		t.Errorf("%d lines in %v, want 1..%d", len(got), elapsed, bound)
	}
	if sum != uint64(res.Refused) {
		t.Errorf("repeats add up to %d, the workload counted %d refusals", sum, res.Refused)
	}
	t.Logf("%d refusals in %v: %d lines", res.Refused, elapsed, len(got))
}
