// Package badness recomputes the kernel's OOM score, oom_badness() in
// mm/oom_kill.c (5.9+, also backported), from the counters the tracer
// captured, so each event can say whether the kernel chose the way the model
// says it should.
package badness

import "math"

// Special scores, as the kernel uses them.
const (
	// Unkillable is LONG_MIN: oom_score_adj -1000 (also MMF_OOM_SKIP, vfork,
	// kernel threads, init). Such a task is never chosen.
	Unkillable int64 = math.MinInt64
	// Origin is LONG_MAX: a task marked oom_task_origin (swapoff, ksm
	// unmerge) is chosen before anyone else.
	Origin int64 = math.MaxInt64
)

// AdjMin is OOM_SCORE_ADJ_MIN.
const AdjMin = -1000

// Inputs are what oom_badness() reads, in pages.
type Inputs struct {
	RSS         uint64 // get_mm_rss(): anon + file + shmem
	Swap        uint64 // MM_SWAPENTS
	PgTables    uint64 // mm_pgtables_bytes() / PAGE_SIZE
	OOMScoreAdj int
	TotalPages  uint64 // the OOM's scope (oc->totalpages)
	// OOMOrigin is task->signal->oom_flag_origin.
	OOMOrigin bool
}

// Score is oom_badness() plus oom_evaluate_task()'s origin rule:
// rss + swap + page tables + adj × (totalpages / 1000), with the kernel's
// integer division, Unkillable for adj -1000, Origin for an origin task.
func Score(in Inputs) int64 {
	if in.OOMOrigin {
		return Origin
	}
	if in.OOMScoreAdj == AdjMin {
		return Unkillable
	}
	points := int64(in.RSS + in.Swap + in.PgTables)
	return points + int64(in.OOMScoreAdj)*int64(in.TotalPages/1000)
}

// ProcOOMScore is /proc/PID/oom_score for a badness computed against the
// machine's totalpages (RAM + swap, in pages): proc_oom_score() scales it to
// (1000 + badness × 1000 / totalpages) × 2 / 3, and shows 0 for unkillable tasks.
func ProcOOMScore(badness int64, machinePages uint64) int64 {
	if badness == Unkillable || machinePages == 0 {
		return 0
	}
	if badness == Origin {
		badness = 2 * int64(machinePages) // the kernel's arithmetic overflows; say the top of the range
	}
	return (1000 + badness*1000/int64(machinePages)) * 2 / 3
}
