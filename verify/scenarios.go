package verify

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/oomtrace/oomtrace/internal/workload"
	"github.com/oomtrace/oomtrace/kernel/node"
	"github.com/oomtrace/oomtrace/tracer"
	"golang.org/x/sys/unix"
)

const mib = 1 << 20

// scenario is one check. run returns its result; an error means the
// scenario could not be carried out at all (reported as a failure).
type scenario struct {
	name string
	run  func(s *session) (Result, error)
}

func scenarios() []scenario {
	return []scenario{
		{"largest_footprint_chosen", largestChosen},
		{"adj_plus_1000_loses", adjPlusChosen},
		{"adj_minus_1000_never_chosen", adjMinusNeverChosen},
		{"multi_threaded_victim_one_kill", multiThreaded},
		{"nested_limit_names_ancestor", nestedLimit},
		{"oom_group_kills_all_as_one", oomGroup},
		{"core_dumping_victim_counted", coreDump},
		{"global_oom_group_kills_victim_twice", globalGroup},
	}
}

// globalGroup: a global OOM whose victim sits in a memory.oom.group cgroup.
// The group domain of a global OOM is the root memcg, so the whole cgroup is
// killed, and the scan kills (and the kernel counts) the chosen victim a
// second time: 5 processes, 6 kills.
func globalGroup(s *session) (Result, error) {
	r := Result{Scenario: "global_oom_group_kills_victim_twice", Expected: "a global OOM kills every process of the victim's memory.oom.group cgroup, the victim twice; every kill traced"}
	switch {
	case !s.globalOOM:
		r.Verdict, r.Reason = NotApplicable, "provokes a global OOM, which may kill any process: only with --global-oom, on a disposable machine"
		return r, nil
	case !s.h.V2:
		r.Verdict, r.Reason = NotApplicable, "memory.oom.group exists on cgroup v2 only; this machine's memory controller is on v1"
		return r, nil
	case !workload.CanLowerOOMScoreAdj():
		r.Verdict, r.Reason = NotApplicable, "protecting this process from the global OOM (oom_score_adj -1000) needs CAP_SYS_RESOURCE"
		return r, nil
	}
	old, err := os.ReadFile("/proc/self/oom_score_adj")
	if err != nil {
		return r, err
	}
	if err := os.WriteFile("/proc/self/oom_score_adj", []byte("-1000"), 0); err != nil {
		return r, err
	}
	s.cleanups = append(s.cleanups, func() { _ = os.WriteFile("/proc/self/oom_score_adj", old, 0) })
	cg, err := s.cgroup(nil, 0)
	if err != nil {
		return r, err
	}
	if err := os.WriteFile(filepath.Join(cg.Path, "memory.oom.group"), []byte("1"), 0); err != nil {
		return r, err
	}
	pids := map[int]bool{}
	for i := 0; i < 4; i++ {
		p, err := s.start(workload.Hog{Cgroup: cg, MB: 8, Comm: "member", Hold: true})
		if err != nil {
			return r, err
		}
		pids[p.Pid()] = true
	}
	// More than the machine has, RAM and swap: the OOM is global.
	n, err := node.Read("/proc")
	if n.MemTotalBytes == 0 {
		return r, fmt.Errorf("reading the machine's memory: %w", err)
	}
	mb := int((n.MemTotalBytes+n.SwapTotalBytes)/mib) + 256
	before, err := snapshotCounts(cg)
	if err != nil {
		return r, err
	}
	p, kills, traced, counted, err := s.runToKill(workload.Hog{Cgroup: cg, MB: mb, Comm: "global", Adj: 1000}, before)
	if err != nil {
		return r, err
	}
	pids[p.Pid()] = true
	killed := map[int]bool{}
	for _, k := range kills {
		killed[int(k.Victim.Pid)] = true
		for _, g := range k.Group {
			killed[int(g.Pid)] = true
		}
	}
	r.Observed = fmt.Sprintf("%d of %d processes killed, in %d events; %d kills traced, %d counted", len(killed), len(pids), len(kills), traced, counted)
	r.Numbers = map[string]any{"processes": len(pids), "events": len(kills), "kills_traced": traced, "kills_counted": counted}
	switch {
	case len(killed) != len(pids):
		r.Verdict, r.Reason = Fail, "a member of the group survived, or a kill was not traced"
	case counted < uint64(len(pids))+1:
		// More is possible (seen once on an emulated arm64 VM: 9 for 5):
		// what matters here is that the tracer sees what the kernel counts.
		r.Verdict, r.Reason = Fail, "the kernel did not count the victim twice: this kernel's group kill differs from the model"
	case traced != counted:
		r.Verdict, r.Reason = Fail, "the tracer's count differs from the kernel's"
	default:
		r.Verdict = Pass
	}
	return r, nil
}

// coreDump: a process that dumps core into a tmpfs charged to its own
// cgroup hits the limit while dumping. The kernel kills and counts it,
// although its process already looks "exiting" (SIGNAL_GROUP_EXIT is set
// during a dump since 5.16): a tracer deciding by that flag misses the kill.
func coreDump(s *session) (Result, error) {
	r := Result{Scenario: "core_dumping_victim_counted", Expected: "a victim OOM-killed while dumping core: one event, one kernel count"}
	pattern, err := os.ReadFile("/proc/sys/kernel/core_pattern")
	if err != nil {
		return r, err
	}
	if p := strings.TrimSpace(string(pattern)); strings.HasPrefix(p, "|") || strings.Contains(p, "/") {
		r.Verdict, r.Reason = NotApplicable, fmt.Sprintf("kernel.core_pattern %q sends cores away from the process's directory: the dump would not be charged to its cgroup (this scenario changes no machine-wide setting)", p)
		return r, nil
	}
	dir, err := os.MkdirTemp("", "oomtrace-verify-core-")
	if err != nil {
		return r, err
	}
	// A private tmpfs: its pages are charged to the writer's memory cgroup.
	if err := unix.Mount("tmpfs", dir, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, "size=256m"); err != nil {
		_ = os.Remove(dir)
		r.Verdict, r.Reason = NotApplicable, fmt.Sprintf("mounting a scratch tmpfs: %v", err)
		return r, nil
	}
	s.cleanups = append(s.cleanups, func() { _ = unix.Unmount(dir, unix.MNT_DETACH); _ = os.Remove(dir) })
	p, kills, traced, counted, err := s.runInCgroup(64*mib, workload.Hog{MB: 40, Comm: "dumper", CoreDump: true, Dir: dir})
	if err != nil {
		return r, err
	}
	r.Observed = fmt.Sprintf("%d events, %d kills traced, %d counted by the kernel", len(kills), traced, counted)
	r.Numbers = map[string]any{"events": len(kills), "kills_traced": traced, "kills_counted": counted}
	switch {
	case counted == 0:
		r.Verdict, r.Reason = NotApplicable, "the dump did not hit the limit (the kernel counted no kill): the core went elsewhere"
	case len(kills) != 1 || traced != counted || int(kills[0].Victim.Pid) != p.Pid():
		r.Verdict, r.Reason = Fail, "want one event for the dumping process, matching the kernel's count"
	default:
		r.Verdict = Pass
	}
	return r, nil
}

// holder is a candidate that allocates its memory and waits.
type holder struct {
	name string
	mb   int
	adj  int
}

// contest starts the holders in a cgroup of limit bytes, reads them as the
// model sees them, then runs a trigger that allocates triggerMB until the
// OOM. The sizes are chosen so the trigger is smaller than the expected
// victim when the OOM comes, and everyone fits once the victim is gone.
func (s *session) contest(limit int64, triggerMB int, holders ...holder) ([]candidate, []tracer.Kill, uint64, uint64, error) {
	cg, err := s.cgroup(nil, limit)
	if err != nil {
		return nil, nil, 0, 0, err
	}
	var cands []candidate
	for _, h := range holders {
		p, err := s.start(workload.Hog{Cgroup: cg, MB: h.mb, Comm: h.name, Adj: h.adj, Hold: true})
		if err != nil {
			return nil, nil, 0, 0, err
		}
		c, err := readCandidate(h.name, p.Pid(), uint64(limit)/uint64(os.Getpagesize()), s.model)
		if err != nil {
			return nil, nil, 0, 0, err
		}
		cands = append(cands, c)
	}
	before, err := snapshotCounts(cg)
	if err != nil {
		return nil, nil, 0, 0, err
	}
	_, kills, traced, counted, err := s.runToKill(workload.Hog{Cgroup: cg, MB: triggerMB, Comm: "trigger"}, before)
	return cands, kills, traced, counted, err
}

func nameOf(cands []candidate, pid uint32) string {
	for _, c := range cands {
		if c.Pid == int(pid) {
			return c.Name
		}
	}
	return "trigger"
}

// judgeChoice compares the one kill with the model's prediction.
func judgeChoice(r Result, cands []candidate, kills []tracer.Kill, traced, counted uint64, extra func(victim string) (bool, string)) Result {
	r.Numbers = map[string]any{"candidates": cands, "kills_traced": traced, "kills_counted": counted}
	pred, ok := predict(cands)
	if !ok {
		r.Verdict, r.Reason = Fail, "the model predicts no victim"
		return r
	}
	r.Expected = fmt.Sprintf("%s (pid %d, model score %d) chosen", pred.Name, pred.Pid, pred.Model)
	var victims []string
	for _, k := range kills {
		victims = append(victims, fmt.Sprintf("%s (pid %d)", nameOf(cands, k.Victim.Pid), k.Victim.Pid))
	}
	// The prediction is about the first choice. The kernel may kill again
	// when the victim's memory is not freed before the next charge (the
	// reaper can give up on a busy mmap lock); those later kills are
	// reported, and counted, but are not what the model predicts.
	if len(kills) == 0 || traced != counted {
		r.Observed = fmt.Sprintf("%d events (%s), %d kills traced, %d counted by the kernel", len(kills), strings.Join(victims, ", "), traced, counted)
		r.Verdict, r.Reason = Fail, "want a kill, traced exactly as the kernel counted"
		return r
	}
	k := kills[0]
	victim := nameOf(cands, k.Victim.Pid)
	r.Observed = fmt.Sprintf("%s (pid %d) chosen", victim, k.Victim.Pid)
	if k.KernelScore != nil {
		r.Observed += fmt.Sprintf(", kernel score %d", *k.KernelScore)
		r.Numbers["kernel_score"] = *k.KernelScore
	}
	if len(kills) > 1 {
		r.Observed += fmt.Sprintf("; then %s", strings.Join(victims[1:], ", "))
	}
	r.Numbers["victim_pid"] = k.Victim.Pid
	r.Verdict = Pass
	if int(k.Victim.Pid) != pred.Pid {
		r.Verdict, r.Reason = Fail, "the kernel chose another process than the model"
	}
	if extra != nil {
		if ok, why := extra(victim); !ok {
			r.Verdict, r.Reason = Fail, why
		}
	}
	return r
}

func largestChosen(s *session) (Result, error) {
	r := Result{Scenario: "largest_footprint_chosen"}
	cands, kills, traced, counted, err := s.contest(128*mib, 40, holder{"small", 24, 0}, holder{"large", 72, 0})
	if err != nil {
		return r, err
	}
	return judgeChoice(r, cands, kills, traced, counted, nil), nil
}

func adjPlusChosen(s *session) (Result, error) {
	r := Result{Scenario: "adj_plus_1000_loses"}
	cands, kills, traced, counted, err := s.contest(128*mib, 32, holder{"small_adj1000", 24, 1000}, holder{"large", 72, 0})
	if err != nil {
		return r, err
	}
	return judgeChoice(r, cands, kills, traced, counted, func(victim string) (bool, string) {
		return victim == "small_adj1000", "oom_score_adj 1000 did not make the small process lose"
	}), nil
}

func adjMinusNeverChosen(s *session) (Result, error) {
	r := Result{Scenario: "adj_minus_1000_never_chosen"}
	if !workload.CanLowerOOMScoreAdj() {
		r.Verdict, r.Reason = NotApplicable, "setting oom_score_adj -1000 needs CAP_SYS_RESOURCE, which this process lacks"
		return r, nil
	}
	cands, kills, traced, counted, err := s.contest(128*mib, 40, holder{"small", 40, 0}, holder{"large_adj-1000", 72, -1000})
	if err != nil {
		return r, err
	}
	return judgeChoice(r, cands, kills, traced, counted, func(victim string) (bool, string) {
		return victim != "large_adj-1000", "a process with oom_score_adj -1000 was killed"
	}), nil
}

func multiThreaded(s *session) (Result, error) {
	r := Result{Scenario: "multi_threaded_victim_one_kill", Expected: "one kill of an 8-thread process: one event, one kernel count"}
	p, kills, traced, counted, err := s.runInCgroup(64*mib, workload.Hog{MB: 256, Threads: 8, Comm: "threads"})
	if err != nil {
		return r, err
	}
	r.Observed = fmt.Sprintf("%d events, %d kills traced, %d counted by the kernel", len(kills), traced, counted)
	r.Numbers = map[string]any{"events": len(kills), "kills_traced": traced, "kills_counted": counted}
	r.Verdict = Pass
	if len(kills) != 1 || traced != 1 || counted != 1 || int(kills[0].Victim.Pid) != p.Pid() {
		r.Verdict, r.Reason = Fail, "want exactly one event for the hog, matching the kernel's count"
	}
	return r, nil
}

func nestedLimit(s *session) (Result, error) {
	r := Result{Scenario: "nested_limit_names_ancestor"}
	parent, err := s.cgroup(nil, 48*mib)
	if err != nil {
		return r, err
	}
	child, err := s.cgroup(parent, 256*mib)
	if err != nil {
		return r, err
	}
	want := strings.TrimPrefix(parent.Path, s.h.Root)
	r.Expected = fmt.Sprintf("the parent's 48 MiB limit (%s) is hit, not the child's 256 MiB", want)
	before, err := snapshotCounts(child)
	if err != nil {
		return r, err
	}
	_, kills, traced, counted, err := s.runToKill(workload.Hog{Cgroup: child, MB: 200, Comm: "nested"}, before)
	if err != nil {
		return r, err
	}
	r.Numbers = map[string]any{"kills_traced": traced, "kills_counted": counted, "parent_id": parent.ID, "child_id": child.ID}
	if len(kills) != 1 || traced != counted {
		r.Observed = fmt.Sprintf("%d events, %d traced, %d counted", len(kills), traced, counted)
		r.Verdict, r.Reason = Fail, "want one kill, counted alike"
		return r, nil
	}
	res := s.enricher.Enrich(s.ctx, kills[0])
	if res.Hit == nil {
		r.Observed, r.Verdict, r.Reason = "no limit named", Fail, fmt.Sprint(res.Errors)
		return r, nil
	}
	r.Observed = fmt.Sprintf("event names %s (%s)", res.Hit.Path, res.Hit.Source)
	r.Numbers["hit_source"] = res.Hit.Source
	if kills[0].Scope != nil {
		r.Numbers["kernel_memcg_id"] = kills[0].Scope.MemcgID
	}
	r.Verdict = Pass
	if res.Hit.Path != want {
		r.Verdict, r.Reason = Fail, "the event blames another cgroup"
	}
	return r, nil
}

func oomGroup(s *session) (Result, error) {
	r := Result{Scenario: "oom_group_kills_all_as_one", Expected: "every process of the cgroup killed by one decision"}
	if !s.h.V2 {
		r.Verdict, r.Reason = NotApplicable, "memory.oom.group exists on cgroup v2 only; this machine's memory controller is on v1"
		return r, nil
	}
	cg, err := s.cgroup(nil, 128*mib)
	if err != nil {
		return r, err
	}
	if err := os.WriteFile(filepath.Join(cg.Path, "memory.oom.group"), []byte("1"), 0); err != nil {
		return r, err
	}
	pids := map[int]string{}
	for _, name := range []string{"member_a", "member_b"} {
		p, err := s.start(workload.Hog{Cgroup: cg, MB: 24, Comm: name, Hold: true})
		if err != nil {
			return r, err
		}
		pids[p.Pid()] = name
	}
	before, err := snapshotCounts(cg)
	if err != nil {
		return r, err
	}
	p, kills, traced, counted, err := s.runToKill(workload.Hog{Cgroup: cg, MB: 256, Comm: "trigger"}, before)
	if err != nil {
		return r, err
	}
	pids[p.Pid()] = "trigger"
	killed := map[int]bool{}
	lines := 0 // one per process in mark_victim mode; a re-kill's line is a repeat
	for _, k := range kills {
		if !k.Repeat {
			lines++
		}
		killed[int(k.Victim.Pid)] = true
		for _, g := range k.Group {
			killed[int(g.Pid)] = true
		}
	}
	missing := 0
	for pid := range pids {
		if !killed[pid] {
			missing++
		}
	}
	r.Observed = fmt.Sprintf("%d of %d processes killed, in %d events; %d kills traced, %d counted", len(pids)-missing, len(pids), len(kills), traced, counted)
	r.Numbers = map[string]any{"processes": len(pids), "events": len(kills), "kills_traced": traced, "kills_counted": counted}
	r.Verdict = Pass
	if s.hooks.Kill == "" && s.hooks.Signal == "" && counted > traced {
		// The group scan kills the chosen victim again; the kernel counts
		// it, but marks nobody, so mark_victim alone cannot see it. With
		// oom_kill_process() or signal_generate hooked, the tracer sees it.
		r.Numbers["kernel_rekills_unseen"] = counted - traced
		s.excused += counted - traced
		traced = counted
	}
	switch {
	case missing > 0:
		r.Verdict, r.Reason = Fail, "a member survived the group kill"
	case traced != counted:
		r.Verdict, r.Reason = Fail, "the tracer's count differs from the kernel's"
	case s.hooks.Kill != "" && len(kills) != 1:
		r.Verdict, r.Reason = Fail, "with oom_kill_process() hooked, a group kill must be one event"
	case s.hooks.Kill == "" && lines != len(pids):
		r.Verdict, r.Reason = Fail, "in mark_victim mode each killed process must be one event"
	}
	return r, nil
}
