package integration

// The candidates the kernel weighed: a cgroup of idle processes of known
// sizes and adjs, and a trigger that outgrows them all. With out_of_memory()
// and oom_badness() hooked, the list is the kernel's own scores; in
// mark_victim mode, the model's over /proc right after the kill.

import (
	"context"
	"os"
	"testing"

	"github.com/oomtrace/oomtrace/enrich"
	"github.com/oomtrace/oomtrace/internal/oomtest"
	"github.com/oomtrace/oomtrace/kernel/badness"
	"github.com/oomtrace/oomtrace/tracer"
)

// holders are idle processes of the cgroup, each a candidate the kernel
// must weigh and rank below the trigger.
var holders = []oomtest.Hog{
	{MB: 24, Comm: "cand-big", Adj: 0},
	{MB: 8, Comm: "cand-adj", Adj: 300},
	{MB: 16, Comm: "cand-neg", Adj: -500},
	{MB: 4, Comm: "cand-never", Adj: -1000},
}

func TestCandidates(t *testing.T) {
	r := startTracer(t)
	e := newEnricher(t)
	h := oomtest.MustHierarchy(t)
	cg := oomtest.NewCgroup(t, h, nil, "cands", 128*mib)
	held := map[uint32]oomtest.Hog{}
	for _, hog := range holders {
		hog.Cgroup, hog.Hold = cg, true
		p, err := hog.Start(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(p.Stop)
		held[uint32(p.Pid())] = hog
	}
	c := snapshot(t, cg)
	runHogs(t, oomtest.Hog{Cgroup: cg, MB: 512, Comm: "cand-trigger"})
	kills := r.waitKills(t, c.delta(t, 0), inCgroup(cg))
	c.checkMachine(t, r)
	if len(kills) == 0 {
		t.Fatal("no kill in the cgroup")
	}
	hooked := r.tr.Hooks().Candidates != ""
	if r.tr.Hooks().Kill != "" && !hooked {
		t.Errorf("oom_kill_process hooked with %s, the candidate hooks refused: %s", r.tr.Hooks().Kill, r.tr.Hooks().Refused["candidates"])
	}
	for _, k := range kills {
		res := e.Enrich(context.Background(), k)
		cands := res.Candidates
		if cands == nil {
			t.Fatalf("kill of %d: no candidates (%v)", k.Victim.Pid, res.Errors)
		}
		t.Logf("kill of %s[%d]: %d weighed, %d unkillable, source %s %s, margin %v",
			k.Victim.Comm, k.Victim.Pid, cands.Total, cands.Unkillable, cands.Source, cands.ModelReason, fmtPtr(cands.Margin))
		for _, c := range cands.List {
			t.Logf("  %-12s pid %-6d adj %5d rss %6d score %d model %d", c.Comm, c.Pid, c.OOMScoreAdj, c.Pages.RSS(), c.Score, c.ModelScore)
		}
		checkCandidates(t, k, cands, held, hooked)
	}
}

func checkCandidates(t *testing.T, k tracer.Kill, c *enrich.Candidates, held map[uint32]oomtest.Hog, hooked bool) {
	t.Helper()
	wantSource, wantReason := enrich.CandidatesKernel, ""
	if !hooked {
		wantSource, wantReason = enrich.CandidatesModel, enrich.ModelNotHooked
	}
	if c.Source != wantSource || c.ModelReason != wantReason {
		t.Errorf("source %q (%q), want %q (%q)", c.Source, c.ModelReason, wantSource, wantReason)
	}
	v := c.List[0]
	if !v.Victim || v.Pid != k.Victim.Pid {
		t.Errorf("first candidate %+v, want the victim %d", v, k.Victim.Pid)
	}
	if k.KernelScore != nil && v.Score != *k.KernelScore {
		t.Errorf("victim's candidate score %d, score.kernel %d", v.Score, *k.KernelScore)
	}
	// Every holder was weighed (the trigger too): 1 + 4 at least.
	if c.Total < 1+len(held) || c.Unkillable < 1 {
		t.Errorf("%d weighed, %d unkillable; want at least %d and 1", c.Total, c.Unkillable, 1+len(held))
	}
	seen := map[uint32]bool{}
	for i, cand := range c.List {
		seen[cand.Pid] = true
		if i > 0 && cand.Victim {
			t.Errorf("candidate %d is marked the victim too", i)
		}
		// The kernel's score, for the counters it read, is the model's.
		if cand.Score != cand.ModelScore {
			t.Errorf("%s[%d]: score %d, model %d (pages %+v adj %d)", cand.Comm, cand.Pid, cand.Score, cand.ModelScore, cand.Pages, cand.OOMScoreAdj)
		}
		if i > 1 && cand.Score > c.List[i-1].Score {
			t.Errorf("candidate %d (%d) ranks below a lower score (%d)", i, cand.Score, c.List[i-1].Score)
		}
		if i > 0 && !cand.Unkillable() && cand.Score > v.Score {
			t.Errorf("%s[%d] scored %d, above the victim's %d", cand.Comm, cand.Pid, cand.Score, v.Score)
		}
		if hog, ok := held[cand.Pid]; ok {
			if int(cand.OOMScoreAdj) != hog.Adj || cand.Comm != hog.Comm {
				t.Errorf("holder %d: %s adj %d, want %s adj %d", cand.Pid, cand.Comm, cand.OOMScoreAdj, hog.Comm, hog.Adj)
			}
			if hog.Adj == badness.AdjMin && !cand.Unkillable() {
				t.Errorf("holder %d at adj -1000 scored %d", cand.Pid, cand.Score)
			}
			// Its memory is in the counters: at least MB, a little more for
			// the program itself.
			if rss := cand.Pages.RSS() * uint64(os.Getpagesize()); rss < uint64(hog.MB)*mib {
				t.Errorf("holder %d: rss %d bytes, it holds %d MiB", cand.Pid, rss, hog.MB)
			}
		}
	}
	for pid, hog := range held {
		if !seen[pid] {
			t.Errorf("holder %s[%d] missing from the candidates", hog.Comm, pid)
		}
	}
	if len(c.List) > 1 && !c.List[1].Unkillable() {
		if c.Margin == nil || *c.Margin != v.Score-c.List[1].Score {
			t.Errorf("margin %v, want %d", fmtPtr(c.Margin), v.Score-c.List[1].Score)
		}
	}
}
