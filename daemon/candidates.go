package daemon

import (
	"github.com/oomtrace/oomtrace/enrich"
	"github.com/oomtrace/oomtrace/event"
	"github.com/oomtrace/oomtrace/kernel/badness"
)

// candidateEvents is a candidate list as the events write it.
func candidateEvents(list []enrich.Candidate) []event.Candidate {
	out := make([]event.Candidate, 0, len(list))
	for _, c := range list {
		ev := event.Candidate{
			Pid: c.Pid, Tid: c.Tid, Comm: c.Comm, Victim: c.Victim, Unkillable: c.Unkillable(),
			OOMScoreAdj: c.OOMScoreAdj,
			Pages:       event.CandidatePages{RSS: c.Pages.RSS(), Swap: c.Pages.Swap, PgTables: c.Pages.PgTables},
		}
		if !ev.Unkillable {
			ev.Score = event.Ptr(c.Score)
		}
		if c.ModelScore != badness.Unkillable {
			ev.ModelScore = event.Ptr(c.ModelScore)
		}
		out = append(out, ev)
	}
	return out
}

// setCandidates fills the oom_kill event's candidate fields from r.
func setCandidates(ev *event.Kill, r enrich.Result) {
	ev.Candidates = []event.Candidate{}
	c := r.Candidates
	if c == nil {
		return
	}
	ev.Candidates = candidateEvents(c.List)
	ev.CandidatesTotal, ev.CandidatesUnkillable = event.Ptr(c.Total), event.Ptr(c.Unkillable)
	ev.CandidatesSource = event.Ptr(c.Source)
	ev.CandidatesModelReason = event.OptStr(c.ModelReason)
	ev.Score.Margin = c.Margin
}

// noKillEvent is the oom_no_kill line of l, as r enriched its latest decision.
func noKillEvent(l noKillLine, r enrich.NoKillResult) event.NoKill {
	s := l.Scope
	ev := event.NoKill{
		Time: l.Time, SchemaVersion: event.SchemaVersion, BootNs: l.BootNs, Repeats: l.Repeats,
		Trigger: event.Process{Pid: l.Trigger.Pid, Tid: l.Trigger.Tid, Comm: l.Trigger.Comm},
		OOM: event.OOM{
			Source:     event.Ptr("out_of_memory"),
			Constraint: event.Ptr(s.Constraint.String()),
			TotalPages: event.Ptr(s.TotalPages),
			Memcg:      event.OOMMemcg{ID: event.Ptr(s.MemcgID), Path: event.OptStr(r.MemcgPath)},
			GFPMask:    event.Ptr(s.GFPMask),
			GFPFlags:   r.GFPFlags,
			Order:      event.Ptr(s.Order),
		},
		Candidates:           candidateEvents(r.Candidates),
		CandidatesTotal:      r.Total,
		CandidatesUnkillable: r.Unkillable,
		CandidatesSource:     event.OptStr(r.Source),
		EnrichErrors:         map[string]string{},
	}
	if r.Error != nil {
		ev.EnrichErrors["candidates"] = r.Error.Error()
	}
	if r.MemcgPath != "" {
		ev.OOM.Memcg.Source = event.Ptr("kernel")
	}
	return ev
}
