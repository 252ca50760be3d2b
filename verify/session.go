package verify

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/oomtrace/oomtrace/enrich"
	"github.com/oomtrace/oomtrace/internal/workload"
	"github.com/oomtrace/oomtrace/kernel/badness"
	"github.com/oomtrace/oomtrace/tracer"
)

// Model scores a process; the real one is badness.Score. Tests feed a wrong
// one to prove a wrong prediction is reported.
type Model func(badness.Inputs) int64

// session is the state the scenarios share: the running tracer's kills, the
// scratch cgroups, and the tallies for the suite-wide checks.
type session struct {
	ctx       context.Context
	h         workload.Hierarchy
	parent    *workload.Cgroup // every scenario's cgroups live below it
	model     Model
	enricher  *enrich.Enricher
	hooks     tracer.Hooks
	globalOOM bool // Options.GlobalOOM
	seq       int
	cleanups  []func()
	mu        sync.Mutex
	kills     []tracer.Kill
	scoreSeen int // kills with a kernel score
	scoreBad  []string
	counted   uint64 // kills the kernel counted in scenario cgroups
	traced    uint64 // kills the tracer reported in them
	// excused are kernel-counted re-kills mark_victim cannot see (group
	// kills in mark_victim mode); the count check names them.
	excused uint64
	// The candidate check's tallies: kills whose candidates the kernel
	// scored (oom_badness() hooked), candidates checked, and mismatches.
	candKills, candChecked int
	candBad                []string
}

func (s *session) record(k tracer.Kill) {
	s.mu.Lock()
	s.kills = append(s.kills, k)
	s.mu.Unlock()
}

// cgroup makes a scratch cgroup for a scenario, removed at the end.
func (s *session) cgroup(parent *workload.Cgroup, limit int64) (*workload.Cgroup, error) {
	if parent == nil {
		parent = s.parent
	}
	s.seq++
	cg, err := workload.CreateCgroup(s.h, parent, fmt.Sprintf("s%d", s.seq), limit)
	if err != nil {
		return nil, err
	}
	s.cleanups = append(s.cleanups, func() { _ = cg.Remove() })
	return cg, nil
}

// start runs a hog and has it killed at the end whatever happens.
func (s *session) start(h workload.Hog) (*workload.Proc, error) {
	p, err := h.Start(s.ctx)
	if err != nil {
		return nil, err
	}
	s.cleanups = append(s.cleanups, func() { _ = p.Cmd.Process.Kill(); p.Stop() })
	return p, nil
}

// runToKill runs a hog until the OOM killer ends it, then collects the
// kills in the cgroups of before (see killsIn).
func (s *session) runToKill(h workload.Hog, before map[*workload.Cgroup]uint64) (*workload.Proc, []tracer.Kill, uint64, uint64, error) {
	p, err := s.start(h)
	if err != nil {
		return nil, nil, 0, 0, err
	}
	_, _ = p.Wait()
	kills, traced, counted, err := s.killsIn(before)
	return p, kills, traced, counted, err
}

// runInCgroup runs hog h in a new scratch cgroup of limit bytes until the
// OOM killer ends it (see runToKill).
func (s *session) runInCgroup(limit int64, h workload.Hog) (*workload.Proc, []tracer.Kill, uint64, uint64, error) {
	cg, err := s.cgroup(nil, limit)
	if err != nil {
		return nil, nil, 0, 0, err
	}
	before, err := snapshotCounts(cg)
	if err != nil {
		return nil, nil, 0, 0, err
	}
	h.Cgroup = cg
	return s.runToKill(h, before)
}

func (s *session) cleanup() {
	for i := len(s.cleanups) - 1; i >= 0; i-- {
		s.cleanups[i]()
	}
	s.cleanups = nil
}

// killsIn waits until the tracer reported as many kills in the cgroups as
// the kernel counted there since before, then a moment more (a duplicate
// would show), and returns those kills and both counts.
func (s *session) killsIn(before map[*workload.Cgroup]uint64) ([]tracer.Kill, uint64, uint64, error) {
	var want uint64
	ids := map[uint64]bool{}
	for cg, n := range before {
		now, err := cg.OOMKills()
		if err != nil {
			return nil, 0, 0, err
		}
		want += now - n
		ids[cg.ID] = true
	}
	match := func() ([]tracer.Kill, uint64) {
		s.mu.Lock()
		defer s.mu.Unlock()
		var got []tracer.Kill
		var n uint64
		for _, k := range s.kills {
			if ids[k.Victim.CgroupID] {
				got = append(got, k)
				n += uint64(k.Kills())
			}
		}
		return got, n
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		_, n := match()
		if n >= want || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(300 * time.Millisecond)
	got, n := match()
	s.counted += want
	s.traced += n
	for _, k := range got {
		s.checkScore(k)
	}
	return got, n, want, nil
}

// checkCandidates tallies the candidate check: each task the kernel
// scored in the decision, against the model for its counters.
func (s *session) checkCandidates(k tracer.Kill) {
	c := k.Candidates
	if c == nil || c.Scored == 0 || k.Scope == nil {
		return // not hooked, or this kernel inlines oom_badness()
	}
	s.candKills++
	for _, t := range c.List {
		p := t.Pages
		if t.Score == badness.Unkillable && p.RSS()+p.Swap+p.PgTables == 0 {
			continue // no mm left (exiting): the kernel skips it, the model cannot know
		}
		want := s.model(badness.Inputs{RSS: p.RSS(), Swap: p.Swap, PgTables: p.PgTables,
			OOMScoreAdj: int(t.OOMScoreAdj), TotalPages: k.Scope.TotalPages, OOMOrigin: t.OOMOrigin})
		s.candChecked++
		if t.Score != want {
			s.candBad = append(s.candBad, fmt.Sprintf("pid %d (%s) in the decision that killed %d: kernel %d, model %d",
				t.Pid, t.Comm, k.Victim.Pid, t.Score, want))
		}
	}
}

// checkScore tallies the kernel-score check for the suite-wide scenario.
func (s *session) checkScore(k tracer.Kill) {
	s.checkCandidates(k)
	if k.KernelScore == nil {
		return
	}
	r := s.enricher.Enrich(s.ctx, k)
	s.scoreSeen++
	if r.Score == nil || !r.Score.Match {
		s.scoreBad = append(s.scoreBad, fmt.Sprintf("pid %d: kernel %d, model %+v", k.Victim.Pid, *k.KernelScore, r.Score))
	}
}

// snapshotCounts reads each cgroup's kernel kill counter.
func snapshotCounts(cgs ...*workload.Cgroup) (map[*workload.Cgroup]uint64, error) {
	m := map[*workload.Cgroup]uint64{}
	for _, cg := range cgs {
		n, err := cg.OOMKills()
		if err != nil {
			return nil, err
		}
		m[cg] = n
	}
	return m, nil
}
