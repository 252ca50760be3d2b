package badness

import "fmt"

// Decision is what the tracer saw of one kill, as the cross-check needs it.
type Decision struct {
	Inputs
	KernelScore int64 // oc->chosen_points
	// NotMemcg: any OOM but a memcg's (constraint none, cpuset or
	// mempolicy), the ones vm.oom_kill_allocating_task applies to.
	NotMemcg bool
	// VictimIsTrigger: the chosen task is the one whose allocation failed.
	VictimIsTrigger bool
	// KillAllocatingTask is the vm.oom_kill_allocating_task sysctl at the kill.
	KillAllocatingTask bool
	// CountersAtKill: the counters were not read in the scan that scored
	// the victim, but later: when it was marked (mark_victim mode, the
	// decision found on the stack), or when oom_kill_process() began where
	// oom_badness()'s returns are not seen (Debian's 5.10 inlines it; or
	// --candidates 0). A victim whose other threads ran meanwhile (faulting
	// in pages, or, before 6.2, syncing their cached counter updates, up
	// to 64 pages per thread and counter) has moved by a few pages: seen
	// on 5.10 with kprobes, 513 pages off a 4-thread victim's 18463.
	CountersAtKill bool
}

// DriftTolerance is how far, in points, counters read at the kill may stand
// from those the kernel scored: 1 MiB of pages or 10% of the pages read
// (rss + swap + page tables), whichever is more. Of the pages, not of the
// score: the drift is in the counters, and a negative oom_score_adj takes
// the score far below them (seen in the VM, 6.12: 416 pages off a victim
// of 9,407 with adj -500, whose score was 991). Between scoring and marking, the kernel prints its report (slow on
// a serial console), and the victim runs meanwhile if it is not the
// allocating task: it grows into memory that an earlier victim, exiting,
// hands back to the cgroup. Measured in mark_victim mode: 6 to 34 points
// for a victim alone in its cgroup (5.10); 184 (1.6%) for one whose 4
// threads kept allocating beside two other hogs (5.10); 372 (5.5%) for a
// single-threaded victim beside two other hogs (6.1). The window has no
// bound the tracer can read, so this is a tolerance, said so in the event.
func DriftTolerance(pages uint64) int64 {
	return max(256, int64(pages/10))
}

// Pages is what of the inputs can drift: rss + swap + page tables.
func (in Inputs) Pages() uint64 { return in.RSS + in.Swap + in.PgTables }

// Check is the verdict on one kill.
type Check struct {
	Recomputed int64 // Score(inputs)
	// Expected is what the kernel's score should be: Recomputed, except
	// where the kernel does not score at all.
	Expected int64
	Match    bool
	// Reason names a special case that decided Expected, "" when none did.
	Reason string
}

// Verify compares the kernel's score with the model's.
func Verify(d Decision) Check {
	c := Check{Recomputed: Score(d.Inputs)}
	c.Expected = c.Recomputed
	switch {
	case d.NotMemcg && d.KillAllocatingTask && d.VictimIsTrigger && d.OOMScoreAdj != AdjMin && d.KernelScore == 0:
		// out_of_memory() kills current without scoring it: chosen_points
		// keeps its initial 0.
		c.Expected, c.Reason = 0, "oom_kill_allocating_task"
	case d.OOMOrigin:
		c.Reason = "oom_task_origin"
	case d.OOMScoreAdj == AdjMin:
		c.Reason = "oom_score_adj_min"
	}
	c.Match = c.Expected == d.KernelScore
	if !c.Match && c.Reason == "" && d.CountersAtKill {
		if tol, diff := DriftTolerance(d.Pages()), c.Expected-d.KernelScore; diff >= -tol && diff <= tol {
			c.Match, c.Reason = true, "counters_read_at_kill"
		}
	}
	return c
}

// Inputs formats the inputs for a mismatch warning.
func (in Inputs) String() string {
	return fmt.Sprintf("rss=%d swap=%d pgtables=%d adj=%d totalpages=%d origin=%t",
		in.RSS, in.Swap, in.PgTables, in.OOMScoreAdj, in.TotalPages, in.OOMOrigin)
}

// ExpectedTotalPages is what oc->totalpages should be for a memcg OOM:
// mem_cgroup_get_max() of the memcg that hit its limit, its memory limit in
// pages plus the swap it may use (capped by the machine's swap), swap that the
// kernel adds only where the memcg's swappiness is not 0 (on v2 that is
// vm.swappiness, on v1 the memcg's memory.swappiness). swapLimit < 0 means no
// swap limit. A global OOM's is the machine's RAM + swap.
func ExpectedTotalPages(memLimitPages uint64, swapLimitPages int64, machineSwapPages uint64, swappiness int) uint64 {
	if swappiness == 0 {
		return memLimitPages
	}
	swap := machineSwapPages
	if swapLimitPages >= 0 && uint64(swapLimitPages) < swap {
		swap = uint64(swapLimitPages)
	}
	return memLimitPages + swap
}
