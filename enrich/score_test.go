package enrich

import (
	"testing"

	"github.com/oomtrace/oomtrace/kernel/node"
	"github.com/oomtrace/oomtrace/tracer"
)

// Counters the scan scored must match exactly; counters read after it (no
// oom_badness() return seen, as on a kernel that inlines it) may have moved
// within the drift tolerance, which the verdict names.
func TestScoreCountersFromScanOrAfter(t *testing.T) {
	e := &Enricher{pageSize: 4096}
	n := node.Context{MemTotalBytes: 1 << 30}
	atKill := candTask(10, 9000, 0) // read at oom_kill_process()
	scanned := candTask(10, 8800, 0)

	// The scan's counters seen: the kernel's 8800 is exact against them.
	k := hookedKill(atKill, 8800, tracer.Candidate{Task: scanned, Score: 8800})
	var r Result
	e.score(k, &r, n, false, false)
	if r.Score == nil || !r.Score.Match || r.Score.Reason != "" || r.Score.Recomputed != 8800 {
		t.Errorf("scan's counters: %+v, want an exact match from them", r.Score)
	}

	// None seen: 200 pages off is drift, said so; 5000 off is a mismatch.
	for _, tc := range []struct {
		kernel int64
		match  bool
	}{{8800, true}, {4000, false}} {
		k := hookedKill(atKill, tc.kernel)
		var r Result
		e.score(k, &r, n, false, false)
		if r.Score == nil || r.Score.Match != tc.match || (tc.match && r.Score.Reason != "counters_read_at_kill") {
			t.Errorf("kernel %d against counters read at the kill: %+v, want match %v", tc.kernel, r.Score, tc.match)
		}
	}
}
