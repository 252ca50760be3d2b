package enrich

import (
	"path/filepath"
	"sync"

	"github.com/oomtrace/oomtrace/kernel/node"
	"github.com/oomtrace/oomtrace/kernel/psi"
)

// statBufs are the scratch buffers of memory.stat and /proc/meminfo reads.
var statBufs = sync.Pool{New: func() any { b := make([]byte, 16<<10); return &b }}

// memStat reads where the OOM scope's memory went and its event counters,
// just after the kill: the OOM memcg's memory.stat and memory.events (v1:
// failcnt and oom_control), or for a global OOM the node's meminfo (no
// events). The victim's own pages may already be partly freed by then
// (the OOM reaper), the rest of the charge is as it was.
func (e *Enricher) memStat(r *Result, global bool, fail func(string, error)) {
	bp := statBufs.Get().(*[]byte)
	defer statBufs.Put(bp)
	e.pressure(r, global, *bp, fail)
	if global {
		s, err := node.ReadMemStat(e.procRoot, *bp)
		if err != nil {
			fail("memcg_stat", err)
			return
		}
		r.MemcgStat = &s
		return
	}
	if r.Hit == nil || e.hierarchy == nil {
		return
	}
	h := *e.hierarchy
	dir := h.Dir(r.Hit.Path)
	if s, err := h.ReadMemStat(&e.statFiles, dir, *bp); err != nil {
		fail("memcg_stat", err)
	} else {
		r.MemcgStat = &s
	}
	if ev, err := h.ReadMemEvents(&e.statFiles, dir, *bp); err != nil {
		fail("memcg_events", err)
	} else {
		r.MemcgEvents = &ev
	}
}

// pressure reads the memory pressure of the OOM scope just after the kill:
// a cgroup v2's memory.pressure, else (cgroup v1 has none, or a global
// OOM) the node's.
func (e *Enricher) pressure(r *Result, global bool, buf []byte, fail func(string, error)) {
	path, scope := filepath.Join(e.procRoot, "pressure/memory"), "node"
	if !global && r.Hit != nil && e.hierarchy != nil && e.hierarchy.V2 {
		path, scope = filepath.Join(e.hierarchy.Dir(r.Hit.Path), "memory.pressure"), "cgroup"
	}
	p, err := psi.Read(&e.statFiles, path, buf)
	if err != nil {
		fail("psi", err)
		return
	}
	r.PSI, r.PSIScope = &p, scope
}
