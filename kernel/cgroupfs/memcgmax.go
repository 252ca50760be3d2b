package cgroupfs

import "github.com/oomtrace/oomtrace/kernel/badness"

// MemcgMax is what mem_cgroup_get_max() (mm/memcontrol.c) reads of the
// memcg whose limit an OOM hit, as that memcg's files give it, in bytes.
// Nil is a file the version lacks, that is missing or reads unlimited.
//
// It lives here, not in badness, because the rule it applies is one of
// cgroup files: which swap file a version has, that v1's counts memory too,
// whose swappiness applies. badness.ExpectedTotalPages keeps the kernel's
// arithmetic in pages, knowing nothing of cgroup versions.
type MemcgMax struct {
	Limit      int64  // Files.Limit: its memory limit (it has one: its OOM hit it)
	SwapLimit  *int64 // Files.SwapLimit (v2): swap alone
	MemswLimit *int64 // Files.MemswLimit (v1): memory plus swap
	// Swappiness is Files.Swappiness, the memcg's own (v1); v2 has none
	// and the node's vm.swappiness applies.
	Swappiness *int64
}

// TotalPages is mem_cgroup_get_max(): the memory limit plus the swap the
// memcg may use, capped by the machine's swap and added only when its
// swappiness is not 0, in pages; what the kernel's oc->totalpages is for
// its OOM. nodeSwappiness is vm.swappiness, machineSwap the machine's swap
// in bytes.
func (m MemcgMax) TotalPages(nodeSwappiness int, machineSwap, pageSize uint64) uint64 {
	swap := int64(-1) // no swap limit
	switch {
	case m.SwapLimit != nil:
		swap = *m.SwapLimit
	case m.MemswLimit != nil:
		// The kernel's memsw.max - memory.max; memsw is never below the
		// memory limit (v1 refuses such a write), clamped all the same
		// lest a read racing a change turn it into no limit.
		swap = max(*m.MemswLimit-m.Limit, 0)
	}
	if swap >= 0 {
		swap /= int64(pageSize)
	}
	swappiness := nodeSwappiness
	if m.Swappiness != nil {
		swappiness = int(*m.Swappiness)
	}
	return badness.ExpectedTotalPages(uint64(m.Limit)/pageSize, swap, machineSwap/pageSize, swappiness)
}
