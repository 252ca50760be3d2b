package daemon

import (
	"testing"
	"time"

	"github.com/oomtrace/oomtrace/tracer"
)

// A scope's first no-kill decision is a line at once; the rest of its
// second wait and go out as one line, with their count, when it ends; a
// quiet scope is forgotten; scopes do not mix.
func TestNoKillsAggregate(t *testing.T) {
	a := newNoKills()
	t0 := time.Unix(1000, 0)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	in := func(memcg uint64, boot uint64) tracer.NoKill {
		return tracer.NoKill{BootNs: boot, Scope: tracer.Scope{MemcgID: memcg}}
	}

	if l, ok := a.add(in(7, 1), at(0)); !ok || l.Repeats != 1 || l.BootNs != 1 {
		t.Fatalf("first decision: %+v %t, want a line of 1 at once", l, ok)
	}
	for i := 1; i <= 499; i++ { // ~500 a second, as measured
		if l, ok := a.add(in(7, uint64(1+i)), at(2*i)); ok {
			t.Fatalf("decision %d within the second made a line: %+v", i, l)
		}
	}
	if l, ok := a.add(in(9, 77), at(500)); !ok || l.Repeats != 1 {
		t.Fatalf("another scope's first decision: %+v %t", l, ok)
	}
	if next := a.next(); !next.Equal(at(1000)) {
		t.Errorf("next wake %v, want the end of scope 7's second", next.Sub(t0))
	}
	if due := a.due(at(999)); len(due) != 0 {
		t.Errorf("due before the second ended: %+v", due)
	}
	due := a.due(at(1000))
	if len(due) != 1 || due[0].Repeats != 499 || due[0].Scope.MemcgID != 7 || due[0].BootNs != 500 {
		t.Fatalf("at the end of the second: %+v, want scope 7's 499, the latest last", due)
	}
	// Scope 9 ends its second quiet: forgotten, no line.
	if due := a.due(at(1500)); len(due) != 0 {
		t.Errorf("a quiet scope made a line: %+v", due)
	}
	if _, ok := a.scopes[9]; ok {
		t.Error("a quiet scope was kept")
	}
	// Scope 7 goes on: its next line waits for the window after its last.
	if _, ok := a.add(in(7, 900), at(1600)); ok {
		t.Error("a decision 0.6 s after scope 7's last line made a line at once")
	}
	if all := a.all(at(1700)); len(all) != 1 || all[0].Repeats != 1 {
		t.Errorf("at shutdown: %+v, want the one pending", all)
	}
	if due := a.due(at(5000)); len(due) != 0 {
		t.Errorf("after shutdown's flush: %+v", due)
	}
	if len(a.scopes) != 0 || !a.next().IsZero() {
		t.Errorf("idle, yet %d scopes and a wake at %v", len(a.scopes), a.next())
	}
}
