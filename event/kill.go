package event

import (
	"time"

	"github.com/rs/zerolog"
)

// Kill is the oom_kill line: one per OOM decision of the kernel (in
// mark_victim mode, one per kill). docs/events.md documents every field.
type Kill struct {
	Time          time.Time `json:"time"`
	SchemaVersion int       `json:"schema_version"`
	BootNs        uint64    `json:"boot_ns"`
	Attach        string    `json:"attach"`
	// Source is bpf (traced) or kmsg (backfilled at startup from the
	// kernel log: a kill while no tracer ran).
	Source       string            `json:"source"`
	Victim       Victim            `json:"victim"`
	Trigger      Trigger           `json:"trigger"`
	OOM          OOM               `json:"oom"`
	Score        Score             `json:"score"`
	Group        []Process         `json:"group"`
	Kills        int               `json:"kills"`
	Repeat       bool              `json:"repeat"`
	Container    Container         `json:"container"`
	K8s          K8s               `json:"k8s"`
	EnrichErrors map[string]string `json:"enrich_errors"`
	Node         *Node             `json:"node,omitempty"` // global OOMs only
	// The tasks the decision weighed, the victim first ([] when not listed).
	Candidates            []Candidate `json:"candidates"`
	CandidatesTotal       *int        `json:"candidates_total"`
	CandidatesUnkillable  *int        `json:"candidates_unkillable"`
	CandidatesSource      *string     `json:"candidates_source"`
	CandidatesModelReason *string     `json:"candidates_model_reason"`
}

// Candidate is one task an OOM decision weighed.
type Candidate struct {
	Pid         uint32         `json:"pid"`
	Tid         uint32         `json:"tid"`
	Comm        string         `json:"comm"`
	Victim      bool           `json:"victim"`
	Score       *int64         `json:"score"` // null when unkillable
	ModelScore  *int64         `json:"model_score"`
	Unkillable  bool           `json:"unkillable"`
	OOMScoreAdj int32          `json:"oom_score_adj"`
	Pages       CandidatePages `json:"pages"`
}

// CandidatePages are what oom_badness() adds up, in pages.
type CandidatePages struct {
	RSS      uint64 `json:"rss"`
	Swap     uint64 `json:"swap"`
	PgTables uint64 `json:"pgtables"`
}

// NoKill is the oom_no_kill line: OOM decisions in one memcg (or the
// machine) that chose nobody, at most one line per scope per second.
type NoKill struct {
	Time          time.Time `json:"time"`
	SchemaVersion int       `json:"schema_version"`
	BootNs        uint64    `json:"boot_ns"`
	// Repeats is how many decisions this line stands for: this one and
	// those since the scope's previous line.
	Repeats    int         `json:"repeats"`
	Trigger    Process     `json:"trigger"`
	OOM        OOM         `json:"oom"`
	Candidates []Candidate `json:"candidates"`
	// CandidatesTotal and CandidatesUnkillable are of the latest decision.
	CandidatesTotal      int     `json:"candidates_total"`
	CandidatesUnkillable int     `json:"candidates_unkillable"`
	CandidatesSource     *string `json:"candidates_source"`
	// EnrichErrors names what could not be read (the model's candidates).
	EnrichErrors map[string]string `json:"enrich_errors"`
}

func (NoKill) Name() string                            { return "oom_no_kill" }
func (n NoKill) MarshalZerologObject(e *zerolog.Event) { embed(e, &n) }

func (Kill) Name() string                            { return "oom_kill" }
func (k Kill) MarshalZerologObject(e *zerolog.Event) { embed(e, &k) }

// Process names a task.
type Process struct {
	Pid  uint32 `json:"pid"`
	Tid  uint32 `json:"tid"`
	Comm string `json:"comm"`
}

// Trigger is the thread whose allocation ran into the OOM, and where in
// the kernel it was.
type Trigger struct {
	Pid  uint32 `json:"pid"`
	Tid  uint32 `json:"tid"`
	Comm string `json:"comm"`
	// KernelStack is its kernel stack at the OOM, function names
	// innermost first (the page fault, slab allocation, pipe or tmpfs
	// write that charged the memory is near the end); null when unknown.
	KernelStack []string `json:"kernel_stack"`
}

// Victim is the killed process as the kernel saw it.
type Victim struct {
	Pid         uint32   `json:"pid"`
	Tid         uint32   `json:"tid"`
	Comm        string   `json:"comm"`
	UID         uint32   `json:"uid"`
	OOMScoreAdj int32    `json:"oom_score_adj"`
	StartTimeNs uint64   `json:"start_time_ns"`
	Pages       Pages    `json:"pages"`
	Cgroup      Cgroup   `json:"cgroup"`
	Partial     bool     `json:"partial,omitempty"`
	Unknown     []string `json:"unknown"`
}

// Pages are the victim's memory counters, in pages.
type Pages struct {
	Anon     uint64 `json:"anon"`
	File     uint64 `json:"file"`
	Shmem    uint64 `json:"shmem"`
	Swap     uint64 `json:"swap"`
	PgTables uint64 `json:"pgtables"`
}

// Cgroup is the victim's memory cgroup and the limits above it.
type Cgroup struct {
	ID                  uint64  `json:"id"`
	DflID               uint64  `json:"dfl_id"`
	Path                *string `json:"path"`
	EffectiveLimitBytes *int64  `json:"effective_limit_bytes"`
	EffectiveLimitPath  *string `json:"effective_limit_path"`
	Chain               []Memcg `json:"chain"`
}

// Memcg is one cgroup of the chain, leaf first.
type Memcg struct {
	Path            string `json:"path"`
	LimitBytes      *int64 `json:"limit_bytes"`
	HighBytes       *int64 `json:"high_bytes"`
	SwapLimitBytes  *int64 `json:"swap_limit_bytes"`
	MemswLimitBytes *int64 `json:"memsw_limit_bytes"`
	UsageBytes      *int64 `json:"usage_bytes"`
	MaxUsageBytes   *int64 `json:"max_usage_bytes"`
	Removed         bool   `json:"removed"`
}

// OOM is the kernel's decision: why and where memory ran out.
type OOM struct {
	Source             *string  `json:"source"`
	Constraint         *string  `json:"constraint"`
	TotalPages         *uint64  `json:"totalpages"`
	Memcg              OOMMemcg `json:"memcg"`
	GFPMask            *uint32  `json:"gfp_mask"`
	GFPFlags           []string `json:"gfp_flags"`
	Order              *int32   `json:"order"`
	TotalPagesExpected *uint64  `json:"totalpages_expected"`
}

// OOMMemcg is the memory cgroup whose limit the OOM hit.
type OOMMemcg struct {
	ID         *uint64 `json:"id"`
	Path       *string `json:"path"`
	LimitBytes *int64  `json:"limit_bytes"`
	Source     *string `json:"source"`
	// Stat is where its memory went (the node's for a global OOM), Events
	// its counters; read just after the kill.
	Stat   *MemcgStat   `json:"stat"`
	Events *MemcgEvents `json:"events"`
	// PSI is its memory pressure just after the kill, or the node's.
	PSI *PSI `json:"psi"`
	// Top are its largest processes at the kill, the largest first (the
	// machine's for a global OOM).
	Top []TopProcess `json:"top"`
	// History is its usage over the last minute, sampled each second
	// while it was above the sampling level, oldest first.
	History []UsageSample `json:"history"`
}

// UsageSample is a cgroup's usage at one time.
type UsageSample struct {
	Time       time.Time `json:"time"`
	UsageBytes int64     `json:"usage_bytes"`
}

// TopProcess is one of the OOM scope's largest processes.
type TopProcess struct {
	Pid      uint32 `json:"pid"`
	Comm     string `json:"comm"`
	RSSBytes uint64 `json:"rss_bytes"`
}

// PSI is a memory pressure file: the share of time tasks stalled on memory.
type PSI struct {
	Scope string   `json:"scope"` // cgroup or node
	Some  PSIStall `json:"some"`
	Full  PSIStall `json:"full"`
}

// PSIStall is one line of it: percent of wall time, and the total in µs.
type PSIStall struct {
	Avg10   float64 `json:"avg10"`
	Avg60   float64 `json:"avg60"`
	Avg300  float64 `json:"avg300"`
	TotalUs uint64  `json:"total_us"`
}

// MemcgStat is a memory.stat in bytes, one set of names for v1 and v2.
type MemcgStat struct {
	Anon          *int64 `json:"anon"`
	File          *int64 `json:"file"`
	Kernel        *int64 `json:"kernel"`
	Slab          *int64 `json:"slab"`
	Shmem         *int64 `json:"shmem"`
	Sock          *int64 `json:"sock"`
	FileDirty     *int64 `json:"file_dirty"`
	FileWriteback *int64 `json:"file_writeback"`
}

// MemcgEvents are a memory cgroup's event counters: v2's memory.events,
// v1's failcnt and oom_kill.
type MemcgEvents struct {
	Low          *int64 `json:"low"`
	High         *int64 `json:"high"`
	Max          *int64 `json:"max"`
	OOM          *int64 `json:"oom"`
	OOMKill      *int64 `json:"oom_kill"`
	OOMGroupKill *int64 `json:"oom_group_kill"`
	Failcnt      *int64 `json:"failcnt"`
	MemswFailcnt *int64 `json:"memsw_failcnt"`
}

// Score is the kernel's score of the victim beside the model's.
type Score struct {
	Kernel      *int64 `json:"kernel"`
	Recomputed  *int64 `json:"recomputed"`
	Match       *bool  `json:"match"`
	SpecialCase string `json:"special_case,omitempty"`
	OOMScore    *int64 `json:"oom_score"`
	// Margin is the victim's score minus the runner-up's.
	Margin *int64 `json:"margin"`
}

// Container is the runtime's view of the victim's cgroup.
type Container struct {
	Runtime          *string        `json:"runtime"`
	ID               *string        `json:"id"`
	Unit             *string        `json:"unit"`
	Name             *string        `json:"name"`
	Image            *string        `json:"image"`
	ImageID          *string        `json:"image_id"`
	Labels           map[string]any `json:"labels"` // strings, and the count of labels cut (a number)
	MemoryLimitBytes *int64         `json:"memory_limit_bytes"`
}

// K8s is the pod, from the cgroup path.
type K8s struct {
	PodUID *string `json:"pod_uid"`
	QoS    *string `json:"qos"`
	// From the container runtime over the CRI (containerd, CRI-O).
	Namespace *string `json:"namespace"`
	Pod       *string `json:"pod"`
	Container *string `json:"container"`
}

// Node is the node's OOM settings.
type Node struct {
	OvercommitMemory      int    `json:"overcommit_memory"`
	OvercommitRatio       int    `json:"overcommit_ratio"`
	PanicOnOOM            int    `json:"panic_on_oom"`
	OOMKillAllocatingTask bool   `json:"oom_kill_allocating_task"`
	OOMDumpTasks          bool   `json:"oom_dump_tasks"`
	MemTotalBytes         uint64 `json:"mem_total_bytes"`
	SwapTotalBytes        uint64 `json:"swap_total_bytes"`
}

// ScoreMismatch follows a Kill whose score.match is false.
type ScoreMismatch struct {
	Time        time.Time `json:"time"`
	Pid         uint32    `json:"pid"`
	Kernel      int64     `json:"kernel"`
	Recomputed  int64     `json:"recomputed"`
	Expected    int64     `json:"expected"`
	RSS         uint64    `json:"rss"`
	Swap        uint64    `json:"swap"`
	PgTables    uint64    `json:"pgtables"`
	OOMScoreAdj int32     `json:"oom_score_adj"`
	TotalPages  uint64    `json:"totalpages"`
}

func (ScoreMismatch) Name() string                            { return "score_mismatch" }
func (m ScoreMismatch) MarshalZerologObject(e *zerolog.Event) { embed(e, &m) }

// Ptr is &v, for the optional fields.
func Ptr[T any](v T) *T { return &v }

// OptStr is &s, or nil (null) for "" (unknown).
func OptStr(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}
