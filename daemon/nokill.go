package daemon

import (
	"time"

	"github.com/oomtrace/oomtrace/tracer"
)

// noKillWindow: at most one oom_no_kill line per scope per window. A memcg
// whose tasks are all unkillable re-enters the OOM killer hundreds of times
// a second, for as long as its allocating task lives.
const noKillWindow = time.Second

// noKillLine is one oom_no_kill line: the latest decision, standing for
// repeats of them.
type noKillLine struct {
	tracer.NoKill
	Repeats int
}

type noKillScope struct {
	lastLine time.Time     // when its last line went out
	pending  int           // decisions since, in no line yet
	latest   tracer.NoKill // the newest of those
}

// noKills aggregates no-kill decisions by scope (the OOM memcg's id, 0 for
// the machine): a scope's first decision makes a line at once; those
// within the window after it wait, and go out as one line when it ends.
// Used from one goroutine.
type noKills struct {
	scopes map[uint64]*noKillScope
}

func newNoKills() *noKills { return &noKills{scopes: map[uint64]*noKillScope{}} }

// add takes a decision seen at now, and returns the line to write now, if any.
func (a *noKills) add(n tracer.NoKill, now time.Time) (noKillLine, bool) {
	s := a.scopes[n.Scope.MemcgID]
	if s == nil {
		s = &noKillScope{}
		a.scopes[n.Scope.MemcgID] = s
	}
	s.pending++
	s.latest = n
	if !s.lastLine.IsZero() && now.Sub(s.lastLine) < noKillWindow {
		return noKillLine{}, false
	}
	return s.flush(now), true
}

func (s *noKillScope) flush(now time.Time) noKillLine {
	l := noKillLine{NoKill: s.latest, Repeats: s.pending}
	s.pending, s.lastLine, s.latest = 0, now, tracer.NoKill{}
	return l
}

// due returns the lines whose window ended with decisions pending, and
// forgets the scopes whose window ended quiet.
func (a *noKills) due(now time.Time) []noKillLine {
	var lines []noKillLine
	for id, s := range a.scopes {
		if now.Sub(s.lastLine) < noKillWindow {
			continue
		}
		if s.pending == 0 {
			delete(a.scopes, id)
			continue
		}
		lines = append(lines, s.flush(now))
	}
	return lines
}

// all returns every pending line, at shutdown.
func (a *noKills) all(now time.Time) []noKillLine {
	var lines []noKillLine
	for _, s := range a.scopes {
		if s.pending > 0 {
			lines = append(lines, s.flush(now))
		}
	}
	return lines
}

// next is when due has something to do: the earliest end of a window that
// has decisions pending or a scope to forget; zero when there is none.
func (a *noKills) next() time.Time {
	var at time.Time
	for _, s := range a.scopes {
		if end := s.lastLine.Add(noKillWindow); at.IsZero() || end.Before(at) {
			at = end
		}
	}
	return at
}
