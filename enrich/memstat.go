package enrich

import (
	"sync"

	"github.com/oomtrace/oomtrace/kernel/node"
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
	if s, err := h.ReadMemStat(dir, *bp); err != nil {
		fail("memcg_stat", err)
	} else {
		r.MemcgStat = &s
	}
	if ev, err := h.ReadMemEvents(dir, *bp); err != nil {
		fail("memcg_events", err)
	} else {
		r.MemcgEvents = &ev
	}
}
