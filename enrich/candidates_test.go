package enrich

import (
	"testing"

	"github.com/oomtrace/oomtrace/kernel/badness"
	"github.com/oomtrace/oomtrace/tracer"
)

func candTask(pid uint32, anon uint64, adj int32) tracer.Task {
	return tracer.Task{Process: tracer.Process{Pid: pid, Tid: pid, Comm: "t"}, OOMScoreAdj: adj, Pages: tracer.Pages{Anon: anon}}
}

func hookedKill(victim tracer.Task, score int64, list ...tracer.Candidate) tracer.Kill {
	return tracer.Kill{
		Victim: victim, Trigger: tracer.Process{Pid: 1}, KernelScore: &score,
		Scope:      &tracer.Scope{Constraint: tracer.ConstraintMemcg, TotalPages: 10000},
		Candidates: &tracer.Candidates{Scored: len(list), List: list},
	}
}

// The kernel's list, victim first, cut to keep, with the model's score of
// each and the margin to the runner-up.
func TestKernelCandidates(t *testing.T) {
	e := &Enricher{keep: 3}
	v := candTask(10, 900, 0)
	k := hookedKill(v, 900,
		tracer.Candidate{Task: v, Score: 900}, tracer.Candidate{Task: candTask(11, 500, 100), Score: 1600},
		tracer.Candidate{Task: candTask(12, 400, 0), Score: 400}, tracer.Candidate{Task: candTask(13, 5, -1000), Score: badness.Unkillable})
	k.Candidates.Unkillable = 1
	c, err := e.candidates(k, 10000, "/")
	if err != nil {
		t.Fatal(err)
	}
	if c.Source != CandidatesKernel || c.Total != 4 || c.Unkillable != 1 || len(c.List) != 3 {
		t.Fatalf("%+v", c)
	}
	if !c.List[0].Victim || c.List[0].Pid != 10 || c.List[1].Pid != 11 || c.List[2].Pid != 12 {
		t.Errorf("order %+v", c.List)
	}
	// 11's kernel score (1600) is what the model says (500 + 100 x 10): equal.
	if c.List[1].ModelScore != 1500 || c.List[1].Score != 1600 {
		t.Errorf("model beside kernel: %+v", c.List[1])
	}
	if c.Margin == nil || *c.Margin != 900-1600 {
		t.Errorf("margin %v", c.Margin)
	}
}

// A victim the kernel chose unscored (oom_task_origin) is not in its list:
// it comes first from its counters, and no scan seen is no fallback.
func TestKernelCandidatesUnscoredVictim(t *testing.T) {
	e := &Enricher{keep: 10}
	v := candTask(10, 900, 0)
	v.OOMOrigin = true
	k := hookedKill(v, badness.Origin)
	c, err := e.candidates(k, 10000, "/")
	if err != nil {
		t.Fatal(err)
	}
	if c.Source != CandidatesKernel || len(c.List) != 1 || c.List[0].Score != badness.Origin || c.Margin != nil {
		t.Errorf("%+v", c)
	}
}

// Hooks attached but no oom_badness() call seen in a decision that scored
// its victim: the kernel inlines it, and the model is named as the source.
func TestInlinedBadnessFallsBack(t *testing.T) {
	e := &Enricher{keep: 10} // no hierarchy: the model cannot read /proc here
	k := hookedKill(candTask(10, 900, 0), 900)
	if _, err := e.candidates(k, 10000, "/"); err == nil {
		t.Fatal("fell back to the model without memory cgroups, and no error")
	}
	if !victimScored(k) {
		t.Error("a victim scored 900 is not scored")
	}
	k.Trigger.Pid = 10
	zero := int64(0)
	k.KernelScore = &zero
	if victimScored(k) {
		t.Error("oom_kill_allocating_task's 0 for the allocating task counts as scored")
	}
}

func TestKeepZeroListsNothing(t *testing.T) {
	e := &Enricher{}
	if c, err := e.candidates(hookedKill(candTask(1, 1, 0), 1), 1, "/"); c != nil || err != nil {
		t.Errorf("%+v %v", c, err)
	}
}
