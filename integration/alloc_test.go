package integration

import (
	"context"
	"encoding/json"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/oomtrace/oomtrace/daemon"
	"github.com/oomtrace/oomtrace/event"
	"github.com/oomtrace/oomtrace/internal/oomtest"
	"github.com/oomtrace/oomtrace/internal/workload"
	"github.com/oomtrace/oomtrace/kernel/commit"
)

const tib = 1 << 40

// startAllocDaemon is the daemon with --alloc-refused, and the syscalls it
// hooked; the test fails unless mmap is among them.
func startAllocDaemon(t *testing.T) (*lockedBuffer, func()) {
	t.Helper()
	// Classic tracepoints are found by their ids in tracefs, which not
	// every machine mounts (a fresh machine here does not).
	oomtest.Tracefs(t)
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
	got, _ := allocLinesRaw(t, out, pid)
	return got
}

// allocLinesRaw are the alloc_refused lines of process pid, decoded and as
// written.
func allocLinesRaw(t *testing.T, out *lockedBuffer, pid int) ([]event.AllocRefused, []string) {
	var got []event.AllocRefused
	var raw []string
	out.lines(t, "alloc_refused", func(b []byte) {
		var a event.AllocRefused
		if err := json.Unmarshal(b, &a); err != nil {
			t.Fatal(err)
		}
		if int(a.Process.Pid) == pid {
			got = append(got, a)
			raw = append(raw, string(b))
		}
	})
	return got, raw
}

// finalAllocLines are pid's lines once the daemon stopped, the first of
// them logged as written.
func finalAllocLines(t *testing.T, out *lockedBuffer, pid int) []event.AllocRefused {
	t.Helper()
	got, raw := allocLinesRaw(t, out, pid)
	if len(raw) > 0 {
		t.Logf("line: %s", raw[0])
	}
	return got
}

// awaitAllocLine waits (bounded) for the daemon's first alloc_refused line
// of pid, before the test stops it: the first refusal's line goes out at
// once, but an emulated VM (arm64) can take its time enriching it, and a
// stop meanwhile would leave the line to the drain's bound.
func awaitAllocLine(t *testing.T, out *lockedBuffer, pid int) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); len(allocLines(t, out, pid)) == 0 && time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
	}
}

// refuseOnce runs a workload that makes one request the kernel refuses,
// under the daemon, and returns the one line it got for it.
func refuseOnce(t *testing.T, r workload.Refuse, what string) event.AllocRefused {
	t.Helper()
	out, stop := startAllocDaemon(t)
	res, err := r.Run(context.Background(), os.Args[0])
	if err != nil {
		t.Fatal(err)
	}
	if res.Refused != 1 {
		t.Fatalf("the kernel refused %d of 1 %s (%d other)", res.Refused, what, res.Other)
	}
	awaitAllocLine(t, out, res.Pid)
	stop()
	got := finalAllocLines(t, out, res.Pid)
	if len(got) != 1 {
		t.Fatalf("%d alloc_refused lines for pid %d, want 1", len(got), res.Pid)
	}
	return got[0]
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
	a := refuseOnce(t, workload.Refuse{Calls: 1, Bytes: tib, Comm: "refuse-mmap"}, "mmaps of 1 TiB")
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
	res, err := workload.Refuse{Calls: 10000, Bytes: tib, Comm: "refuse-loop"}.Run(context.Background(), os.Args[0])
	if err != nil {
		t.Fatal(err)
	}
	elapsed := time.Since(start)
	awaitAllocLine(t, out, res.Pid)
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

// Under an RLIMIT_AS, an mmap beyond it is refused by may_expand_vm(),
// before any overcommit rule: rule rlimit_as, with the limit and the
// process's size that decided it. Safe anywhere: the limit is the
// workload's own.
func TestAllocRefusedRlimitAS(t *testing.T) {
	oomtest.RequireRoot(t)
	a := refuseOnce(t, workload.Refuse{Calls: 1, Bytes: 1 << 30, Comm: "refuse-rlimit", RlimitAS: 256 << 20, Hold: time.Second}, "mmaps of 1 GiB past RLIMIT_AS")
	c := a.Commit
	if a.Syscall != "mmap" || a.Rule != "rlimit_as" || c.RlimitAS == nil || c.TotalVMBytes+c.RequestBytes <= *c.RlimitAS {
		t.Errorf("line %+v, commit %+v: want mmap refused by rlimit_as, total_vm + request past the limit", a, c)
	}
}

// brk fails by keeping the old break: a break raised past RLIMIT_DATA is
// refused (rule rlimit_data), and the line gives the growth asked for,
// read from the syscall's first argument at its exit. Safe anywhere: the
// limit is the workload's own.
func TestAllocRefusedBrkRlimitData(t *testing.T) {
	oomtest.RequireRoot(t)
	a := refuseOnce(t, workload.Refuse{Calls: 1, Call: "brk", Bytes: 1 << 30, Comm: "refuse-brk", RlimitData: 256 << 20, Hold: time.Second}, "brk raises of 1 GiB past RLIMIT_DATA")
	c := a.Commit
	if a.Syscall != "brk" || a.RequestBytes != 1<<30 || a.Rule != "rlimit_data" || a.Process.Comm != "refuse-brk" || a.Ret <= 0 {
		t.Errorf("line %+v: want brk raised by 1 GiB by refuse-brk, refused by rlimit_data, ret the old break", a)
	}
	if c.RlimitData == nil || c.DataBytes+c.RequestBytes <= *c.RlimitData {
		t.Errorf("commit %+v: data + request do not pass RLIMIT_DATA", c)
	}
}

// mremap growing a page to 1 TiB is refused by the overcommit heuristic:
// the line gives the new length asked for (the third argument) and the
// growth the kernel weighed (new less old, the second).
func TestAllocRefusedMremapHeuristic(t *testing.T) {
	oomtest.RequireRoot(t)
	acct, err := os.ReadFile("/proc/sys/vm/overcommit_memory")
	if err != nil || string(acct) != "0\n" {
		t.Skipf("vm.overcommit_memory is %q here, the test needs the heuristic (0); never changed outside a VM", acct)
	}
	a := refuseOnce(t, workload.Refuse{Calls: 1, Call: "mremap", Bytes: tib, Comm: "refuse-mremap"}, "mremaps to 1 TiB")
	page := uint64(os.Getpagesize())
	if a.Syscall != "mremap" || a.RequestBytes != tib || a.Commit.RequestBytes != tib-page || a.Rule != "heuristic" || a.Ret != -12 {
		t.Errorf("line %+v: want mremap of a page to 1 TiB (growth %d) refused by the heuristic, ret -ENOMEM", a, tib-page)
	}
}

// In strict mode (VM only: never on the host) a process of 300 MiB forks
// with less than that left below CommitLimit: rule strict, and the numbers
// show Committed_AS + request past the limit less the reserves.
func TestAllocRefusedStrictFork(t *testing.T) {
	oomtest.RequireRoot(t)
	if !inVM() {
		t.Skip("changes vm.overcommit_memory: only in the VM (OOMTRACE_VM=1)")
	}
	out, stop := startAllocDaemon(t)
	set := func(name, v string) {
		t.Helper()
		if err := os.WriteFile("/proc/sys/vm/"+name, []byte(v), 0); err != nil {
			t.Fatal(err)
		}
	}
	read := func(name string) string {
		data, _ := os.ReadFile("/proc/sys/vm/" + name)
		return strings.TrimSpace(string(data))
	}
	mode, kbytes, ratio := read("overcommit_memory"), read("overcommit_kbytes"), read("overcommit_ratio")
	t.Cleanup(func() {
		set("overcommit_memory", mode)
		if kbytes != "0" {
			set("overcommit_kbytes", kbytes)
		} else {
			set("overcommit_ratio", ratio)
		}
	})
	acct, err := commit.ReadAccounting("/proc")
	if err != nil {
		t.Fatal(err)
	}
	// Room for the workload's 300 MiB and the daemon's own, not for a copy.
	set("overcommit_kbytes", strconv.FormatUint((acct.CommittedBytes+450<<20-acct.SwapTotalBytes)>>10, 10))
	set("overcommit_memory", "2")
	res, err := workload.Refuse{ForkMB: 300, Forks: 3, Comm: "refuse-fork", Hold: time.Second}.Run(context.Background(), os.Args[0])
	set("overcommit_memory", mode)
	if err != nil {
		t.Fatal(err)
	}
	if res.Refused != 3 {
		t.Fatalf("the kernel refused %d of 3 forks (%d other)", res.Refused, res.Other)
	}
	awaitAllocLine(t, out, res.Pid)
	stop()
	got := finalAllocLines(t, out, res.Pid)
	var n uint64
	for _, a := range got {
		n += a.Repeats
		c := a.Commit
		if !strings.HasPrefix(a.Syscall, "clone") && a.Syscall != "fork" {
			t.Errorf("syscall %s", a.Syscall)
		}
		if a.Rule != "strict" || c.Mode == nil || *c.Mode != 2 || c.CommittedBytes == nil || c.LimitBytes == nil || c.ReserveBytes == nil {
			t.Fatalf("line %+v, commit %+v: want strict with its numbers", a, c)
		}
		if *c.CommittedBytes+c.RequestBytes < *c.LimitBytes-*c.ReserveBytes || c.RequestBytes < 300<<20 {
			t.Errorf("commit %+v: %d committed + %d requested do not reach %d - %d", c, *c.CommittedBytes, c.RequestBytes, *c.LimitBytes, *c.ReserveBytes)
		}
	}
	if n != 3 {
		t.Errorf("repeats add up to %d, want 3", n)
	}
}
