package rank

import (
	"context"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/oomtrace/oomtrace/enrich/cgroups"
	"github.com/oomtrace/oomtrace/internal/oomtest"
)

func TestMain(m *testing.M) {
	oomtest.MaybeRunHog() // the hogs are this test binary, re-executed
	os.Exit(m.Run())
}

// Two holding hogs in a scratch 64 MiB cgroup, below its limit: no OOM is
// provoked, only predicted.
func TestRankHost(t *testing.T) {
	oomtest.RequireRoot(t)
	h := oomtest.MustHierarchy(t)
	cg := oomtest.NewCgroup(t, h, nil, "rank", limit64)
	var hogs []*oomtest.Proc
	// adj +100 (raising needs no privilege) moves the small hog's global
	// oom_score well off the 666 baseline, yet adds only 1600 points in a
	// 64 MiB cgroup: not enough to outrank the big one.
	for _, hog := range []oomtest.Hog{{MB: 8, Adj: 100}, {MB: 24}} {
		hog.Cgroup, hog.Hold, hog.Comm = cg, true, "rankhog"
		p, err := hog.Start(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(p.Stop) // before the cgroup's removal: cleanups run last first
		hogs = append(hogs, p)
	}
	src := Source{Hierarchy: cgroups.Hierarchy{Root: h.Root, V2: h.V2}, ProcRoot: "/proc"}
	snap, err := src.Snapshot(Options{Top: 0, Threshold: 0.9})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("snapshot of %d cgroups, %d processes in %.1f ms", snap.Walked, snap.Read, snap.ScanSeconds*1000)
	c := row(t, snap, strings.TrimPrefix(cg.Path, h.Root))
	if got := pids(c.Candidates); !slices.Equal(got, []int{hogs[1].Pid(), hogs[0].Pid()}) {
		t.Fatalf("candidates %v, want the 24 MiB hog %d then the 8 MiB one %d", got, hogs[1].Pid(), hogs[0].Pid())
	}
	big := c.Candidates[0]
	for _, x := range c.Candidates {
		t.Logf("pid %d adj %d pages %+v score %d oom_score %v model %d", x.Pid, x.OOMScoreAdj, x.Pages, x.Score, *x.OOMScore, x.ModelOOMScore)
	}
	// 24 MiB touched, plus the Go runtime and the mapped test binary.
	if rss := big.Pages.RSS() * pageSize; rss < 24*mib || rss > 24*mib+40*mib {
		t.Errorf("24 MiB hog: rss %.1f MiB, want 24 MiB plus at most 40 MiB of runtime and binary", float64(rss)/mib)
	}
	small := c.Candidates[1]
	if c.TotalPages != limit64/pageSize || big.Score != int64(big.Pages.RSS()+big.Pages.Swap+big.Pages.PgTables) ||
		small.Score != int64(small.Pages.RSS()+small.Pages.Swap+small.Pages.PgTables)+100*16 {
		t.Errorf("totalpages %d scores %d %d, want %d, rss+swap+pgtables, the same +100×16", c.TotalPages, big.Score, small.Score, limit64/pageSize)
	}
	// The kernel computes oom_score from the approximate percpu mm counters
	// at its own moment; status (exact sums since 6.16) is read at ours.
	// One oom_score point is ~machine_pages/1500 pages (16 MiB per GiB of
	// RAM + swap): a few pages apart can only flip the last integer rounding.
	for _, cand := range c.Candidates {
		if cand.OOMScore == nil {
			t.Fatalf("pid %d: no oom_score", cand.Pid)
		}
		if d := *cand.OOMScore - cand.ModelOOMScore; d < -1 || d > 1 {
			t.Errorf("pid %d: kernel oom_score %d, model %d: want within 1", cand.Pid, *cand.OOMScore, cand.ModelOOMScore)
		}
		if cand.Comm != "rankhog" || cand.Cgroup != c.Path {
			t.Errorf("pid %d: comm %q cgroup %q", cand.Pid, cand.Comm, cand.Cgroup)
		}
	}
	// 32 MiB touched in a 64 MiB cgroup; page cache charged here is small.
	if c.Ratio == nil || *c.Ratio < 0.45 || *c.Ratio > 0.85 || c.AtRisk || *c.EffectiveLimit != limit64 {
		t.Errorf("ratio %v at risk %v effective limit %v: want about 0.5-0.7 of 64 MiB, not at risk", c.Ratio, c.AtRisk, c.EffectiveLimit)
	}
}
