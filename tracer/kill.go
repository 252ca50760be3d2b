package tracer

import (
	"cmp"
	"slices"
	"time"

	"github.com/oomtrace/oomtrace/kernel/mm"
)

// Attach names how the tracer learns of kills; it is part of every event
// because it decides which fields can be known.
type Attach string

const (
	// AttachFentry: oom_kill_process() hooked with fentry/fexit. Every field is known.
	AttachFentry Attach = "fentry"
	// AttachKprobe: oom_kill_process() hooked with kprobe/kretprobe. Every field is known.
	AttachKprobe Attach = "kprobe"
	// AttachMarkVictimOnly: oom_kill_process() could not be hooked; kills are
	// seen through oom:mark_victim alone, so the OOM's scope and the kernel's
	// score are unknown.
	AttachMarkVictimOnly Attach = "mark_victim"
)

// Kill is one OOM kill as the kernel performed it: one per OOM decision,
// with the other processes a memory.oom.group decision killed in Group.
type Kill struct {
	Time   time.Time // wall-clock time of the kernel record
	BootNs uint64    // the same instant, ns since boot (CLOCK_BOOTTIME)
	Attach Attach

	Victim  Task
	Trigger Process // the task whose allocation ran into the OOM
	// TriggerStack is its kernel stack at the OOM; nil when not taken
	// (a mark inside a decision whose begin record was lost).
	TriggerStack *KernelStack

	// Scope is nil when the decision could not be read: oom_kill_process()
	// not hooked, and its struct oom_control not found on the stack.
	Scope *Scope
	// ScopeFrom says where Scope and KernelScore come from; "" when nil.
	ScopeFrom ScopeFrom
	// KernelScore is oc->chosen_points, the kernel's oom_badness() of the
	// victim; nil when oom_kill_process() was not hooked.
	KernelScore *int64

	// Group lists the other processes killed by the same decision
	// (memory.oom.group); empty for an ordinary kill.
	Group []Process

	// SignalCounted is the decision's kills as its SIGKILLs show them
	// (signal_generate hooked): exactly the kernel's count, re-kills of a
	// group's victim included. 0 when unknown.
	SignalCounted int

	// Repeat is set, in mark_victim mode, on the kill of a process the OOM
	// killer had killed before: memory.oom.group's scan kills the chosen
	// victim again, and the kernel counts both.
	Repeat bool

	// Candidates are the tasks the kernel weighed in this decision, nil
	// when out_of_memory() and oom_badness() are not hooked (mark_victim
	// mode, a refused hook) or their record was lost.
	Candidates *Candidates

	// MemcgCounted is how much the OOM memcg's own oom_kill counter grew
	// during the decision (0 when unknown: a global OOM, mark_victim mode).
	// On cgroup v2 it is the kernel's count of the decision's kills, which
	// for memory.oom.group includes processes the group scan killed a second
	// time (upstream kills, and counts, the chosen victim again).
	MemcgCounted int
}

// Kills is the number of kills the kernel counted for this decision: the
// count its SIGKILLs show where signal_generate is hooked; otherwise the
// victim plus the group, or the memcg's own count when that is higher (a
// group kill's re-kills are counted by the kernel but marked by nobody).
func (k *Kill) Kills() int {
	if k.SignalCounted > 0 {
		return k.SignalCounted
	}
	return max(1+len(k.Group), k.MemcgCounted)
}

// Process identifies a task.
type Process struct {
	Pid  uint32 // thread group id
	Tid  uint32 // thread id
	Comm string // escaped, see EscapeComm
}

// Task is the victim as read from its task_struct and mm_struct.
type Task struct {
	Process
	UID         uint32
	OOMScoreAdj int32
	StartTime   uint64 // group leader start, ns since boot
	Pages       Pages
	// CgroupID is the id of the memory controller's cgroup: on cgroup v1 the
	// directory in the memory hierarchy, on v2 the cgroup the task is charged
	// in. DflCgroupID is the task's cgroup on the default (v2) hierarchy.
	CgroupID    uint64
	DflCgroupID uint64
	// Partial is set when the kernel's record named the victim by thread
	// id and its task could not be read (mark_victim's pre-2024 layout or
	// the classic tracepoint, victim neither current nor the target of the
	// SIGKILL seen): pid, comm and cgroup then come from /proc, if it still
	// has the process, and start time, pages and cgroup ids may be zero.
	Partial bool
	// Unknown holds the values this kernel's layout did not let the BPF
	// program read: zero there means unknown, not zero.
	Unknown Unknown
	// OOMOrigin is signal->oom_flag_origin (swapoff, ksm): the kernel
	// chooses such a task first, whatever its size.
	OOMOrigin bool
}

// Unknown is a set of victim values a kernel may lack.
type Unknown uint8

const (
	UnknownPages    Unknown = 1 << iota // mm counters in neither known layout
	UnknownPgTables                     // no mm->pgtables_bytes
	UnknownCgroup                       // no memory controller or cgroups in BTF
)

// Names lists the set's values as the event's victim.unknown spells them.
func (u Unknown) Names() []string {
	names := []string{}
	for _, v := range []struct {
		bit  Unknown
		name string
	}{{UnknownPages, "pages"}, {UnknownPgTables, "pgtables"}, {UnknownCgroup, "cgroup"}} {
		if u&v.bit != 0 {
			names = append(names, v.name)
		}
	}
	return names
}

// Pages are the victim's memory counters, in pages, as the OOM killer reads them.
type Pages = mm.Pages

// ScopeFrom is where a kill's decision (Scope, KernelScore) was read.
type ScopeFrom string

const (
	// ScopeFromHook: oom_kill_process()'s own argument, at its entry.
	ScopeFromHook ScopeFrom = "oom_kill_process"
	// ScopeFromStack: mark_victim-only mode; the struct oom_control found
	// on the deciding thread's kernel stack at the mark, by the victim's
	// task pointer (oc->chosen), and checked to be plausible.
	ScopeFromStack ScopeFrom = "stack"
)

// Scope is the OOM decision: why and where memory ran out.
type Scope struct {
	Constraint Constraint
	TotalPages uint64 // size of the OOM's scope in pages, NOT the victim's size
	MemcgID    uint64 // cgroup id of the memcg that hit its limit; 0 for a global OOM
	GFPMask    uint32
	Order      int32
}

// Constraint is the kernel's enum oom_constraint.
type Constraint uint32

const (
	ConstraintNone Constraint = iota
	ConstraintCpuset
	ConstraintMemoryPolicy
	ConstraintMemcg
)

func (c Constraint) String() string {
	switch c {
	case ConstraintNone:
		return "none"
	case ConstraintCpuset:
		return "cpuset"
	case ConstraintMemoryPolicy:
		return "memory_policy"
	case ConstraintMemcg:
		return "memcg"
	}
	return "unknown"
}

// Candidates are the tasks an out_of_memory() call weighed: each one
// oom_badness() scored on the deciding thread, as the kernel computed it.
type Candidates struct {
	// Scored is how many tasks oom_badness() scored; Unkillable how many
	// of them it found unkillable (oom_score_adj -1000, no mm, MMF_OOM_SKIP,
	// in vfork). Tasks the scan skips before scoring (kernel threads, init,
	// tasks outside the cpuset) are in neither.
	Scored, Unkillable int
	// List holds the best (--candidates of them), ranked as the kernel
	// ranks: the highest score first, on a tie the one scanned later.
	List []Candidate
}

// Candidate is one task oom_badness() scored.
type Candidate struct {
	Task
	// Score is what oom_badness() returned: badness.Unkillable
	// (math.MinInt64) for a task it found unkillable.
	Score int64
	// Scanned is the task's place in the scan, from 1.
	Scanned uint32
}

// rank orders List as the kernel would choose: oom_evaluate_task() skips a
// task only when its points are below the chosen one's, so of equal scores
// the one scanned last wins.
func (c *Candidates) rank() {
	slices.SortFunc(c.List, func(a, b Candidate) int {
		return cmp.Or(cmp.Compare(b.Score, a.Score), cmp.Compare(b.Scanned, a.Scanned))
	})
}

// NoKill is an out_of_memory() call that chose nobody: no task in the
// OOM's scope was killable. The kernel retries the allocation, and with it
// the OOM, as long as the allocating task lives.
type NoKill struct {
	Time       time.Time
	BootNs     uint64
	Trigger    Process // the task whose allocation ran into the OOM
	Scope      Scope
	Candidates Candidates
}
