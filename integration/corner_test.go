package integration

// The kernel's corner cases, counted against its counters: a victim dumping
// core, a global OOM of a memory.oom.group cgroup, a group decision long
// enough to outlast any fixed timer, a zombie group leader, a reused pid.

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/oomtrace/oomtrace/internal/oomtest"
	"github.com/oomtrace/oomtrace/tracer"
)

// setSysctl writes a /proc/sys file for the test and restores it after.
func setSysctl(t *testing.T, name, value string) {
	t.Helper()
	path := "/proc/sys/" + strings.ReplaceAll(name, ".", "/")
	old, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(value), 0); err != nil {
		t.Fatalf("setting %s: %v", name, err)
	}
	t.Cleanup(func() { _ = os.WriteFile(path, old, 0) })
}

// protectSelf keeps the kernel from choosing this test in a global OOM;
// restored after, for the tests that follow (raising needs no privilege).
func protectSelf(t *testing.T) {
	t.Helper()
	if err := os.WriteFile("/proc/self/oom_score_adj", []byte("-1000"), 0); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.WriteFile("/proc/self/oom_score_adj", []byte("0"), 0) })
}

// bystanders, for a global OOM: if the reaper cannot free the hog's memory
// in time (it gives up when the mmap lock stays taken, and emulated CPUs are
// slow), the next OOM needs someone else to kill; with nobody left the kernel
// panics ("System is deadlocked on memory"). Small, so the hog goes first.
func bystanders(t *testing.T) {
	t.Helper()
	for i := 0; i < 2; i++ {
		b, err := oomtest.Hog{MB: 8, Comm: "bystander", Adj: 1000, Hold: true}.Start(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(b.Stop)
	}
}

// sleepers starts n sleep processes inside cg (a group kill's members); they
// are killed at the end if the kernel has not.
func sleepers(t *testing.T, cg *oomtest.Cgroup, n int) {
	t.Helper()
	for i := 0; i < n; i++ {
		cmd := exec.Command("sleep", "600")
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
		if err := os.WriteFile(cg.ProcsFile(), []byte(strconv.Itoa(cmd.Process.Pid)), 0); err != nil {
			t.Fatal(err)
		}
	}
}

func oomGroup(t *testing.T, cg *oomtest.Cgroup) {
	t.Helper()
	if !cg.V2 {
		t.Skip("memory.oom.group exists on cgroup v2 only; this machine's memory controller is on v1")
	}
	if err := os.WriteFile(filepath.Join(cg.Path, "memory.oom.group"), []byte("1"), 0); err != nil {
		t.Fatal(err)
	}
}

// A victim dumping core is killed and counted by the kernel, although its
// process already looks "exiting" (SIGNAL_GROUP_EXIT is set during a dump).
func TestCoreDumpingVictim(t *testing.T) {
	oomtest.RequireVM(t) // core_pattern is machine-wide
	r := startTracer(t)
	cores := t.TempDir() // tmpfs in the VM: the core's pages are charged to the dumping cgroup
	setSysctl(t, "kernel.core_pattern", filepath.Join(cores, "core.%p"))
	cg := oomtest.NewCgroup(t, oomtest.MustHierarchy(t), nil, "core", 64*mib)
	c := snapshot(t, cg)

	procs := runHogs(t, oomtest.Hog{Cgroup: cg, MB: 40, Comm: "oomhog-core", CoreDump: true})
	want := c.delta(t, 0)
	if want != 1 {
		t.Fatalf("kernel counted %d kills in the cgroup, want 1 (the dump should hit the limit)", want)
	}
	kills := r.waitKills(t, want, inCgroup(cg))
	c.checkMachine(t, r)
	if len(kills) != 1 || int(kills[0].Victim.Pid) != procs[0].Pid() {
		t.Fatalf("got %+v, want one kill of the dumping hog %d", kills, procs[0].Pid())
	}
	// The decision is read too, hooked or off the stack: a deep stack (the
	// victim is its own trigger, in the middle of writing its core) holds
	// its task pointer many times above the oom_control.
	if h := r.tr.Hooks(); (h.Kill != "" || h.Signal != "") && kills[0].Scope == nil {
		t.Errorf("no decision read for the dumping victim (hooks %+v)", h)
	}
}

// A global OOM whose victim sits in a memory.oom.group cgroup: the group
// domain is the root memcg, so the scan kills the whole cgroup and the chosen
// victim a second time; the kernel counts 6 for 5 processes.
func TestGlobalOOMGroup(t *testing.T) {
	oomtest.RequireVM(t)
	r := startTracer(t)
	protectSelf(t)
	cg := oomtest.NewCgroup(t, oomtest.MustHierarchy(t), nil, "global-group", 0)
	oomGroup(t, cg)
	for i := 0; i < 4; i++ {
		m, err := oomtest.Hog{Cgroup: cg, MB: 8, Comm: "member", Hold: true}.Start(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(m.Stop)
	}
	bystanders(t) // outside the group
	c := snapshot(t, cg)
	runHogs(t, oomtest.Hog{Cgroup: cg, MB: 4096, Comm: "oomhog-global", Adj: 1000})
	want := c.delta(t, 0)
	if want < 6 {
		t.Errorf("kernel counted %d kills in the group cgroup, want at least 6 (5 processes, the victim twice)", want)
	}
	r.waitKills(t, want, inCgroup(cg))
	c.checkMachine(t, r)
}

// A memory.oom.group decision of many members, each printed by the kernel
// to the serial console at the default console level (a millisecond or two
// a line): it lasts longer than any fixed timer, and must still come out as
// one decision with every kill.
func TestLongGroupDecision(t *testing.T) {
	oomtest.RequireVM(t) // kernel.printk is machine-wide
	r := startTracer(t)
	setSysctl(t, "kernel.printk", "7 4 1 7")
	cg := oomtest.NewCgroup(t, oomtest.MustHierarchy(t), nil, "long-group", 64*mib)
	oomGroup(t, cg)
	const members = 200
	sleepers(t, cg, members)
	c := snapshot(t, cg)
	runHogs(t, oomtest.Hog{Cgroup: cg, MB: 256, Comm: "oomhog-group"})
	want := c.delta(t, 0)
	if want < members+1 {
		t.Errorf("kernel counted %d kills, want at least %d", want, members+1)
	}
	kills := r.waitKills(t, want, inCgroup(cg))
	c.checkMachine(t, r)
	if h := r.tr.Hooks(); h.Kill != "" && len(kills) != 1 {
		t.Errorf("%d events for one group decision", len(kills))
	}
	if st := r.tr.Stats(); st.Flushed != 0 {
		t.Errorf("%d decisions closed before their end: %+v", st.Flushed, st)
	}
}

// oc->chosen can be a group leader that exited while its threads live on:
// its own mm is gone, and the kernel scores it through a live thread. Only a
// global OOM chooses such a process: a memcg's scan walks processes by their
// leader and skips a dead leader whose threads live on.
func TestZombieLeaderVictim(t *testing.T) {
	oomtest.RequireVM(t)
	r := startTracer(t)
	protectSelf(t)
	bystanders(t)
	c := snapshot(t)
	procs := runHogs(t, oomtest.Hog{MB: 4096, Threads: 2, Comm: "oomhog-zombie", Adj: 1000, ZombieLeader: true})
	kills := r.waitKills(t, 1, func(k tracer.Kill) bool { return int(k.Victim.Pid) == procs[0].Pid() })
	c.checkMachine(t, r)
	if len(kills) != 1 {
		t.Fatalf("got %d events for the hog, want 1", len(kills))
	}
	k := kills[0]
	if k.Victim.Pages.Anon < 1024 {
		t.Errorf("victim anon pages %d: not read from a live thread's mm", k.Victim.Pages.Anon)
	}
	checkScope(t, k, r.tr.Hooks(), nil) // the kernel's score equals the one recomputed from the pages
}

// A pid reused by a new process is a new victim: two kills, two events.
func TestReusedPid(t *testing.T) {
	oomtest.RequireVM(t) // steers the machine's pid allocation
	r := startTracer(t)
	cg := oomtest.NewCgroup(t, oomtest.MustHierarchy(t), nil, "reuse", 64*mib)
	c := snapshot(t, cg)
	hog := oomtest.Hog{Cgroup: cg, MB: 256, Comm: "oomhog-reuse"}
	first := runHogs(t, hog)[0].Pid()
	var second int
	for try := 0; try < 20 && second != first; try++ {
		// The next pid handed out is ns_last_pid + 1.
		if err := os.WriteFile("/proc/sys/kernel/ns_last_pid", []byte(strconv.Itoa(first-1)), 0); err != nil {
			t.Fatal(err)
		}
		p, err := hog.Start(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if killed, err := p.Wait(); err != nil || !killed {
			t.Fatalf("hog %d: killed %v, %v", p.Pid(), killed, err)
		}
		second = p.Pid()
	}
	if second != first {
		t.Skipf("could not get pid %d again in 20 tries (other processes took it)", first)
	}
	want := c.delta(t, 0)
	kills := r.waitKills(t, want, func(k tracer.Kill) bool { return inCgroup(cg)(k) && int(k.Victim.Pid) == first })
	c.checkMachine(t, r)
	if len(kills) < 2 {
		t.Errorf("%d events for pid %d, killed twice", len(kills), first)
	}
}
