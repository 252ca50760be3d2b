package badness

import "fmt"

// Decision is what the tracer saw of one kill, as the cross-check needs it.
type Decision struct {
	Inputs
	KernelScore int64 // oc->chosen_points
	Global      bool  // constraint none: not a memcg, cpuset or mempolicy OOM
	// VictimIsTrigger: the chosen task is the one whose allocation failed.
	VictimIsTrigger bool
	// KillAllocatingTask is the vm.oom_kill_allocating_task sysctl at the kill.
	KillAllocatingTask bool
}

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
	case d.Global && d.KillAllocatingTask && d.VictimIsTrigger && d.OOMScoreAdj != AdjMin && d.KernelScore == 0:
		// out_of_memory() kills current without scoring it: chosen_points
		// keeps its initial 0.
		c.Expected, c.Reason = 0, "oom_kill_allocating_task"
	case d.OOMOrigin:
		c.Reason = "oom_task_origin"
	case d.OOMScoreAdj == AdjMin:
		c.Reason = "oom_score_adj_min"
	}
	c.Match = c.Expected == d.KernelScore
	return c
}

// Inputs formats the inputs for a mismatch warning.
func (in Inputs) String() string {
	return fmt.Sprintf("rss=%d swap=%d pgtables=%d adj=%d totalpages=%d origin=%t",
		in.RSS, in.Swap, in.PgTables, in.OOMScoreAdj, in.TotalPages, in.OOMOrigin)
}

// ExpectedTotalPages is what oc->totalpages should be for a memcg OOM:
// mem_cgroup_get_max() of the memcg that hit its limit, its memory limit in
// pages plus the swap it may use (capped by the machine's swap). swapLimit < 0
// means no swap limit. A global OOM's is the machine's RAM + swap.
func ExpectedTotalPages(memLimitPages uint64, swapLimitPages int64, machineSwapPages uint64) uint64 {
	swap := machineSwapPages
	if swapLimitPages >= 0 && uint64(swapLimitPages) < swap {
		swap = uint64(swapLimitPages)
	}
	return memLimitPages + swap
}
