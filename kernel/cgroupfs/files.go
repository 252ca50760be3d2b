package cgroupfs

// Files names a memory cgroup's files in one cgroup version, so that every
// reader of them (the enricher, rank, verify, the tests) asks the same table
// instead of spelling the names again. "" means the version has no such file.
type Files struct {
	Limit    string // the OOM limit: memory.max (v2), memory.limit_in_bytes (v1)
	High     string // v2 only: memory.high throttles, never OOM-kills
	Usage    string // memory.current (v2), memory.usage_in_bytes (v1)
	MaxUsage string // memory.peak (v2, 5.19+), memory.max_usage_in_bytes (v1)
	// SwapLimit (v2 memory.swap.max) limits swap alone; MemswLimit (v1
	// memory.memsw.limit_in_bytes) limits memory plus swap. Each version
	// has one of the two: mem_cgroup_get_max() reads them differently (see
	// MemcgMax), so they are kept apart rather than named "swap" both.
	SwapLimit  string
	SwapUsage  string // v2 only: memory.swap.current
	MemswLimit string
	// Swappiness is v1's memory.swappiness; a v2 memcg uses vm.swappiness.
	Swappiness string
	// Events holds the oom_kill counter: memory.events (v2, this cgroup
	// and its descendants), memory.oom_control (v1).
	Events string
	Stat   string // memory.stat, both versions
	// InactiveFile is the key in Stat of the inactive file pages, which
	// reclaim drops before any OOM: v1's hierarchical total_inactive_file
	// (its inactive_file is the cgroup's own pages only), v2's
	// inactive_file (always hierarchical).
	InactiveFile string
}

var (
	filesV1 = Files{
		Limit: "memory.limit_in_bytes", Usage: "memory.usage_in_bytes", MaxUsage: "memory.max_usage_in_bytes",
		MemswLimit: "memory.memsw.limit_in_bytes", Swappiness: "memory.swappiness",
		Events: "memory.oom_control", Stat: "memory.stat", InactiveFile: "total_inactive_file",
	}
	filesV2 = Files{
		Limit: "memory.max", High: "memory.high", Usage: "memory.current", MaxUsage: "memory.peak",
		SwapLimit: "memory.swap.max", SwapUsage: "memory.swap.current",
		Events: "memory.events", Stat: "memory.stat", InactiveFile: "inactive_file",
	}
)

// Files names the memory cgroup files of h's version.
func (h Hierarchy) Files() Files {
	if h.V2 {
		return filesV2
	}
	return filesV1
}
