package enrich

import (
	"cmp"
	"fmt"
	"slices"
	"time"

	"github.com/oomtrace/oomtrace/internal/kfile"
	"github.com/oomtrace/oomtrace/kernel/badness"
	"github.com/oomtrace/oomtrace/kernel/cgroupfs"
	"github.com/oomtrace/oomtrace/rank"
	"github.com/oomtrace/oomtrace/tracer"
)

// Where a kill's candidate list comes from.
const (
	// CandidatesKernel: oom_badness() hooked on the deciding thread; each
	// score is the kernel's own.
	CandidatesKernel = "kernel"
	// CandidatesModel: the badness model over the OOM scope's processes as
	// /proc has them right after the kill, the victim from its counters
	// at the kill. Scores are the model's, so they can only agree with it.
	CandidatesModel = "model"
)

// Why the model stands in for the kernel's list.
const (
	// ModelNotHooked: out_of_memory() and oom_badness() are not hooked
	// (mark_victim mode, a refused hook).
	ModelNotHooked = "not_hooked"
	// ModelScanUnseen: the hooks ran but saw no oom_badness() call in a
	// decision that scored its victim: this kernel's compiler inlined the
	// OOM killer's call, and the out-of-line copy serves /proc alone.
	ModelScanUnseen = "oom_badness_inlined"
)

// Candidates is a kill's candidate list as the event shows it.
type Candidates struct {
	Source string // CandidatesKernel or CandidatesModel
	// ModelReason says why the model stands in (ModelNotHooked,
	// ModelScanUnseen); "" for the kernel's list.
	ModelReason string
	// Total is how many tasks were weighed (the kernel's: oom_badness()
	// calls; the model's: processes read); Unkillable how many of those
	// could not be chosen.
	Total, Unkillable int
	List              []Candidate // the victim first, then the best others, ranked
	// Margin is the victim's score minus the runner-up's; nil without a
	// killable runner-up.
	Margin *int64
}

// Candidate is one task weighed.
type Candidate struct {
	Pid, Tid    uint32
	Comm        string
	OOMScoreAdj int32
	Pages       tracer.Pages
	// Score is the kernel's oom_badness() (source kernel) or the model's;
	// badness.Unkillable for a task that could not be chosen.
	Score int64
	// ModelScore is the model's oom_badness() for the same counters and
	// totalpages.
	ModelScore int64
	Victim     bool
}

// Unkillable says the kernel (or the model) could not choose this task.
func (c Candidate) Unkillable() bool { return c.Score == badness.Unkillable }

// KeepCandidates sets how many candidates an event lists (the victim
// included); 0 lists none and skips the model's /proc reads.
func (e *Enricher) KeepCandidates(n int) { e.keep = n }

// ModelScore is the badness model's oom_badness() of t in a scope of
// totalPages.
func ModelScore(t tracer.Task, totalPages uint64) int64 {
	return badness.Score(badness.Inputs{
		RSS: t.Pages.RSS(), Swap: t.Pages.Swap, PgTables: t.Pages.PgTables,
		OOMScoreAdj: int(t.OOMScoreAdj), TotalPages: totalPages, OOMOrigin: t.OOMOrigin,
	})
}

// candidates builds k's list: the kernel's when its hooks saw the scan,
// else the model's. totalPages is the scope's size (the kernel's, else the
// expected one); scopePath the OOM memcg's path, "/" for the machine.
func (e *Enricher) candidates(k tracer.Kill, totalPages uint64, scopePath string) (*Candidates, error) {
	if e.keep <= 0 {
		return nil, nil
	}
	reason := ModelNotHooked
	if kc := k.Candidates; kc != nil {
		if kc.Scored > 0 || !victimScored(k) {
			return e.kernelCandidates(k, *kc), nil
		}
		reason = ModelScanUnseen
	}
	return e.modelCandidates(k, totalPages, scopePath, reason)
}

// victimScored says the kernel chose k's victim by oom_badness(): not
// oom_task_origin() (LONG_MAX, unscored) nor oom_kill_allocating_task
// (chosen_points stays 0).
func victimScored(k tracer.Kill) bool {
	if k.Victim.OOMOrigin || k.KernelScore == nil {
		return false
	}
	return *k.KernelScore != badness.Origin && !(*k.KernelScore == 0 && k.Trigger.Pid == k.Victim.Pid)
}

func (e *Enricher) kernelCandidates(k tracer.Kill, kc tracer.Candidates) *Candidates {
	total := uint64(0)
	if k.Scope != nil {
		total = k.Scope.TotalPages
	}
	c := &Candidates{Source: CandidatesKernel, Total: kc.Scored, Unkillable: kc.Unkillable}
	victim := -1
	for i, t := range kc.List {
		if t.Pid == k.Victim.Pid && victim < 0 {
			victim = i
		}
	}
	if victim >= 0 {
		c.List = append(c.List, fromTask(kc.List[victim].Task, kc.List[victim].Score, total, true))
	} else {
		// Chosen unscored (oom_task_origin, the allocating task), or
		// scored but not kept: from its counters at the kill.
		score := ModelScore(k.Victim, total)
		if k.KernelScore != nil {
			score = *k.KernelScore
		}
		c.List = append(c.List, fromTask(k.Victim, score, total, true))
	}
	for i, t := range kc.List {
		if i != victim && len(c.List) < e.keep {
			c.List = append(c.List, fromTask(t.Task, t.Score, total, false))
		}
	}
	c.margin()
	return c
}

func fromTask(t tracer.Task, score int64, totalPages uint64, victim bool) Candidate {
	return Candidate{
		Pid: t.Pid, Tid: t.Tid, Comm: t.Comm, OOMScoreAdj: t.OOMScoreAdj, Pages: t.Pages,
		Score: score, ModelScore: ModelScore(t, totalPages), Victim: victim,
	}
}

// modelCandidates reads the scope's processes from /proc now, the victim
// left out (its counters are being freed) and put first from the kill's.
func (e *Enricher) modelCandidates(k tracer.Kill, totalPages uint64, scopePath, reason string) (*Candidates, error) {
	// The model's score of the victim too, from its counters at the kill,
	// so the list is one model's ranking (a kernel score found on the
	// stack was read at the mark, when the counters had moved).
	c := &Candidates{Source: CandidatesModel, ModelReason: reason, Total: 1,
		List: []Candidate{fromTask(k.Victim, ModelScore(k.Victim, totalPages), totalPages, true)}}
	others, err := e.weigh(scopePath, totalPages, k.Victim.Pid)
	if err != nil {
		return nil, err
	}
	c.Total += len(others)
	for _, o := range others {
		if o.Unkillable() {
			c.Unkillable++
		}
	}
	c.List = append(c.List, others[:min(len(others), e.keep-1)]...)
	c.margin()
	return c, nil
}

// alive says whether pid still exists: a list served from procsCache may
// hold a storm's earlier victims. kill(pid, 0) asks without /proc, so
// without the task lock a /proc open would spin on.
func alive(pid int) bool {
	return kfile.Alive(pid)
}

// weigh is the model's ranking of the processes of the cgroup at path and
// below, as /proc has them now, without the process except (0: none).
func (e *Enricher) weigh(path string, totalPages uint64, except uint32) ([]Candidate, error) {
	now := time.Now()
	procs, err := e.scopeProcesses(path, now)
	if err != nil {
		return nil, err
	}
	type read struct {
		Candidate
		at int // place in the walk, for the ranking below
	}
	others := make([]read, 0, len(procs))
	for i, p := range procs {
		if uint32(p.Pid) == except || e.victims.has(uint32(p.Pid), now) || !alive(p.Pid) {
			continue
		}
		t := tracer.Task{
			Process:     tracer.Process{Pid: uint32(p.Pid), Tid: uint32(p.Pid), Comm: tracer.EscapeComm([]byte(p.Comm))},
			OOMScoreAdj: int32(p.OOMScoreAdj), Pages: p.Pages,
		}
		others = append(others, read{fromTask(t, ModelScore(t, totalPages), totalPages, false), i})
	}
	// As the kernel ranks: of equal scores the later scanned first (the
	// walk's order stands in for the kernel's, see rank).
	slices.SortFunc(others, func(a, b read) int {
		return cmp.Or(cmp.Compare(b.Score, a.Score), cmp.Compare(b.at, a.at))
	})
	out := make([]Candidate, len(others))
	for i, o := range others {
		out[i] = o.Candidate
	}
	return out, nil
}

// scopeProcesses are the processes of the OOM scope at path ("/" for the
// machine) as /proc has them, read at most once per procsTTL for the
// candidate list and the top together; recent victims are not read.
func (e *Enricher) scopeProcesses(path string, now time.Time) ([]rank.Process, error) {
	if e.hierarchy == nil {
		return nil, errNoHierarchy
	}
	src := rank.Source{Hierarchy: cgroupfs.Hierarchy(*e.hierarchy), ProcRoot: e.procRoot, Files: e.procFiles,
		Skip: func(pid int) bool { return e.victims.has(uint32(pid), now) }}
	return e.procs.get(path, now, src.Processes)
}

func (c *Candidates) margin() {
	if len(c.List) < 2 || c.List[0].Unkillable() || c.List[1].Unkillable() ||
		c.List[0].Score == badness.Origin {
		return
	}
	m := c.List[0].Score - c.List[1].Score
	c.Margin = &m
}

// NoKillResult is what enrichment adds to a decision that chose nobody.
type NoKillResult struct {
	MemcgPath string   // the OOM memcg's path, "" for the machine or unresolved
	GFPFlags  []string // nil when the kernel's names are unknown
	// Candidates are the kernel's, or where its oom_badness() calls went
	// unseen (inlined) the model's over /proc (Source says which).
	Candidates []Candidate
	Source     string
	// Total and Unkillable are the tasks weighed and the unkillable ones.
	Total, Unkillable int
	Error             error // why the model's list could not be read
}

// EnrichNoKill names n's memcg and gfp flags and scores its candidates
// (the kernel's, cut to the events' length) with the model.
func (e *Enricher) EnrichNoKill(n tracer.NoKill) NoKillResult {
	var r NoKillResult
	if n.Scope.MemcgID != 0 && e.resolver != nil {
		r.MemcgPath, _ = e.resolver.Path(n.Scope.MemcgID)
	}
	if e.gfp != nil {
		if r.GFPFlags = e.gfp.Names(n.Scope.GFPMask); r.GFPFlags == nil {
			r.GFPFlags = []string{}
		}
	}
	if e.keep <= 0 {
		return r
	}
	r.Source = CandidatesKernel
	if n.Candidates.Scored == 0 {
		path := "/"
		if n.Scope.MemcgID != 0 {
			if path = r.MemcgPath; path == "" {
				r.Error = fmt.Errorf("oom memcg id %d not found", n.Scope.MemcgID)
				return r
			}
		}
		r.Source = CandidatesModel
		all, err := e.weigh(path, n.Scope.TotalPages, 0)
		r.Error, r.Total = err, len(all)
		for _, c := range all {
			if c.Unkillable() {
				r.Unkillable++
			}
		}
		r.Candidates = all[:min(len(all), e.keep)]
		return r
	}
	r.Total, r.Unkillable = n.Candidates.Scored, n.Candidates.Unkillable
	for _, c := range n.Candidates.List {
		if len(r.Candidates) >= e.keep {
			break
		}
		r.Candidates = append(r.Candidates, fromTask(c.Task, c.Score, n.Scope.TotalPages, false))
	}
	return r
}
