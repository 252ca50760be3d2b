package badness

import "testing"

func TestScore(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   Inputs
		want int64
	}{
		// Measured on 6.1 (KERNEL-NOTES): 16680 = 1+16242+383+0+54, 64 MiB memcg.
		{"measured 6.1", Inputs{RSS: 1 + 16242 + 383, Swap: 0, PgTables: 54, TotalPages: 16384}, 16680},
		{"swap counts", Inputs{RSS: 100, Swap: 50, PgTables: 2, TotalPages: 16384}, 152},
		// adj is scaled by totalpages/1000 with integer division: 16384/1000 = 16.
		{"adj +1000", Inputs{RSS: 100, OOMScoreAdj: 1000, TotalPages: 16384}, 100 + 16000},
		{"adj +500 truncates", Inputs{RSS: 100, OOMScoreAdj: 500, TotalPages: 1999}, 100 + 500},
		{"adj negative can go below zero", Inputs{RSS: 100, OOMScoreAdj: -999, TotalPages: 16384}, 100 - 999*16},
		{"adj -1000 unkillable", Inputs{RSS: 1 << 30, OOMScoreAdj: -1000, TotalPages: 16384}, Unkillable},
		{"origin first", Inputs{RSS: 1, OOMScoreAdj: -500, TotalPages: 16384, OOMOrigin: true}, Origin},
		{"small scope: adj has no weight", Inputs{RSS: 7, OOMScoreAdj: 1000, TotalPages: 999}, 7},
	} {
		if got := Score(tc.in); got != tc.want {
			t.Errorf("%s: Score = %d, want %d", tc.name, got, tc.want)
		}
	}
}

func TestProcOOMScore(t *testing.T) {
	const machine = 6_000_000 // ~23 GiB of 4 KiB pages
	for _, tc := range []struct {
		badness int64
		want    int64
	}{
		{0, 666},
		{machine / 2, 1000},
		{machine, 1333},
		{-machine, 0},
		{12345, (1000 + 12345*1000/machine) * 2 / 3},
		{Unkillable, 0},
		{2 * machine, 2000}, // rss the size of the machine and adj +1000
		{Origin, 2000},
	} {
		if got := ProcOOMScore(tc.badness, machine); got != tc.want {
			t.Errorf("ProcOOMScore(%d) = %d, want %d", tc.badness, got, tc.want)
		}
	}
}

func TestVerify(t *testing.T) {
	base := Inputs{RSS: 16626, PgTables: 54, TotalPages: 16384}
	for _, tc := range []struct {
		name   string
		d      Decision
		match  bool
		reason string
	}{
		{"kernel agrees", Decision{Inputs: base, KernelScore: 16680}, true, ""},
		{"kernel disagrees", Decision{Inputs: base, KernelScore: 16000}, false, ""},
		{"allocating task killed unscored", Decision{Inputs: base, KernelScore: 0, NotMemcg: true, KillAllocatingTask: true, VictimIsTrigger: true}, true, "oom_kill_allocating_task"},
		{"sysctl set but memcg OOM scores", Decision{Inputs: base, KernelScore: 0, KillAllocatingTask: true, VictimIsTrigger: true}, false, ""},
		{"origin", Decision{Inputs: Inputs{RSS: 1, OOMOrigin: true}, KernelScore: Origin}, true, "oom_task_origin"},
	} {
		c := Verify(tc.d)
		if c.Match != tc.match || c.Reason != tc.reason {
			t.Errorf("%s: got %+v, want match=%t reason=%q", tc.name, c, tc.match, tc.reason)
		}
	}
}

// Counters read at the kill (mark_victim mode) may have moved a few pages
// since the kernel scored them: within the tolerance that is a match, said
// so; beyond it, a mismatch still.
func TestCountersReadAtKill(t *testing.T) {
	in := Inputs{RSS: 18000, PgTables: 40, TotalPages: 16384}
	near := Verify(Decision{Inputs: in, KernelScore: Score(in) - 6, CountersAtKill: true})
	if !near.Match || near.Reason != "counters_read_at_kill" {
		t.Errorf("6 pages of drift: %+v", near)
	}
	if exact := Verify(Decision{Inputs: in, KernelScore: Score(in), CountersAtKill: true}); !exact.Match || exact.Reason != "" {
		t.Errorf("no drift: %+v", exact)
	}
	if far := Verify(Decision{Inputs: in, KernelScore: Score(in) - 2000, CountersAtKill: true}); far.Match {
		t.Errorf("2000 points off matched: %+v", far)
	}
	if hooked := Verify(Decision{Inputs: in, KernelScore: Score(in) - 6}); hooked.Match {
		t.Errorf("read at oom_kill_process(), 6 points off matched: %+v", hooked)
	}
	// The tolerance follows the pages, not the score: a victim of 9,407
	// pages with adj -500 scores 1,407, and 416 pages of drift (seen on
	// 6.12) are within its 10%.
	neg := Inputs{RSS: 9364, PgTables: 43, OOMScoreAdj: -500, TotalPages: 16384}
	if c := Verify(Decision{Inputs: neg, KernelScore: Score(neg) - 416, CountersAtKill: true}); !c.Match {
		t.Errorf("416 pages of drift on 9,407, adj -500: %+v", c)
	}
	if c := Verify(Decision{Inputs: neg, KernelScore: Score(neg) - 1000, CountersAtKill: true}); c.Match {
		t.Errorf("1000 pages of drift on 9,407 matched: %+v", c)
	}
}

func TestExpectedTotalPagesSwappinessZero(t *testing.T) {
	// mem_cgroup_get_max() adds swap only where swappiness is not 0.
	if got := ExpectedTotalPages(16384, -1, 500, 0); got != 16384 {
		t.Errorf("swappiness 0: %d, want the limit alone", got)
	}
}

func TestExpectedTotalPages(t *testing.T) {
	if got := ExpectedTotalPages(16384, -1, 0, 60); got != 16384 {
		t.Errorf("no swap: %d", got)
	}
	if got := ExpectedTotalPages(16384, 1000, 500, 60); got != 16884 {
		t.Errorf("machine swap caps: %d", got)
	}
	if got := ExpectedTotalPages(16384, 100, 500, 60); got != 16484 {
		t.Errorf("swap limit caps: %d", got)
	}
	if got := ExpectedTotalPages(16384, -1, 500, 60); got != 16884 {
		t.Errorf("unlimited swap: %d", got)
	}
}
