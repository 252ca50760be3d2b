package tracer

import (
	"testing"
	"time"
)

// Synthetic record sequences in the order the ring buffer delivers them,
// modelled on what the kernel does (mm/oom_kill.c) and what was measured
// (KERNEL-NOTES: one kill of a multi-threaded Go program, three marks).

type seqBuilder struct {
	recs []Record
	now  uint64
}

func (b *seqBuilder) add(r Record) *seqBuilder {
	b.now += 1000
	r.BootNs = b.now
	b.recs = append(b.recs, r)
	return b
}

func task(pid, tid uint32, start uint64, comm string) Task {
	return Task{Process: Process{Pid: pid, Tid: tid, Comm: comm}, StartTime: start, Pages: Pages{Anon: 100}}
}

func begin(seq uint64, trigger Process, victim Task, memcg uint64) Record {
	return Record{Kind: KindKillBegin, Seq: seq, Trigger: trigger, Task: victim, KernelScore: 100,
		Scope: Scope{Constraint: ConstraintMemcg, TotalPages: 16384, MemcgID: memcg}}
}

func mark(seq uint64, current Process, victim Task) Record {
	return Record{Kind: KindMark, Seq: seq, Trigger: current, Task: victim}
}

func end(seq uint64) Record { return Record{Kind: KindKillEnd, Seq: seq} }

func endCounted(seq uint64, n uint32) Record {
	return Record{Kind: KindKillEnd, Seq: seq, MemcgKills: n}
}

func run(attach Attach, recs []Record) ([]Kill, *Joiner) {
	var kills []Kill
	j := NewJoiner(attach, func(k Kill) { kills = append(kills, k) })
	j.wall = func(ns uint64) time.Time { return time.Unix(0, int64(ns)) }
	for _, r := range recs {
		j.Feed(r)
	}
	return kills, j
}

var (
	hog     = task(100, 100, 5, "hog")
	hogT2   = task(100, 102, 5, "hog")
	hogT3   = task(100, 103, 5, "hog")
	other   = task(200, 200, 6, "other")
	third   = task(300, 300, 7, "third")
	trigger = Process{Pid: 100, Tid: 101, Comm: "hog"}
)

// One kill of a multi-threaded process: the decision marks the victim once,
// then two dying threads mark themselves through the shortcut.
func TestJoinThreadShortcut(t *testing.T) {
	hooked := (&seqBuilder{}).
		add(begin(1, trigger, hog, 9)).
		add(mark(1, trigger, hog)).
		add(end(1)).
		add(mark(0, hogT2.Process, hogT2)).
		add(mark(0, hogT3.Process, hogT3)).recs
	kills, j := run(AttachFentry, hooked)
	if len(kills) != 1 || kills[0].Victim.Pid != 100 || len(kills[0].Group) != 0 {
		t.Fatalf("hooked: got %+v", kills)
	}
	if *kills[0].KernelScore != 100 || kills[0].Scope.MemcgID != 9 || kills[0].Attach != AttachFentry {
		t.Errorf("hooked: lost the decision's fields: %+v", kills[0])
	}
	if j.Stats.ShortcutMarks != 2 || j.Stats.Kills != 1 || j.Stats.Decisions != 1 {
		t.Errorf("hooked stats %+v", j.Stats)
	}

	// The same without oom_kill_process(): only the marks, and the first
	// marked thread is not always the leader.
	markOnly := (&seqBuilder{}).
		add(mark(0, trigger, hogT2)).
		add(mark(0, hogT3.Process, hogT3)).
		add(mark(0, hog.Process, hog)).recs
	kills, j = run(AttachMarkVictimOnly, markOnly)
	if len(kills) != 1 || kills[0].Victim.Tid != 102 || kills[0].Scope != nil || kills[0].KernelScore != nil {
		t.Fatalf("mark-only: got %+v", kills)
	}
	if kills[0].Trigger != trigger || j.Stats.ShortcutMarks != 2 {
		t.Errorf("mark-only: trigger %+v stats %+v", kills[0].Trigger, j.Stats)
	}
}

// memory.oom.group: one decision kills every process of the cgroup.
func TestJoinGroupKill(t *testing.T) {
	recs := (&seqBuilder{}).
		add(begin(4, trigger, hog, 9)).
		add(mark(4, trigger, hog)).
		add(mark(4, trigger, other)).
		add(mark(4, trigger, third)).
		add(mark(4, trigger, third)). // a second thread of the same member
		add(endCounted(4, 4)).recs    // the group scan killed the victim again: the memcg counted 4
	kills, j := run(AttachKprobe, recs)
	if len(kills) != 1 {
		t.Fatalf("got %d events, want one per decision", len(kills))
	}
	k := kills[0]
	if k.Victim.Pid != 100 || len(k.Group) != 2 || k.Group[0].Pid != 200 || k.Group[1].Pid != 300 {
		t.Fatalf("victim %d group %+v", k.Victim.Pid, k.Group)
	}
	if k.Kills() != 4 || j.Stats.Kills != 4 || k.MemcgCounted != 4 {
		t.Errorf("kills %d stats %+v: want the memcg's count of 4", k.Kills(), j.Stats)
	}

	// Without the decision each member is its own event, still each once.
	markOnly := (&seqBuilder{}).
		add(mark(0, trigger, hog)).add(mark(0, trigger, other)).
		add(mark(0, trigger, third)).add(mark(0, third.Process, third)).recs
	kills, _ = run(AttachMarkVictimOnly, markOnly)
	if len(kills) != 3 {
		t.Fatalf("mark-only group: %d events, want 3", len(kills))
	}
}

// Two OOMs in two cgroups: decisions are serialised by oom_lock, but the
// other cgroup's dying threads mark themselves in between.
func TestJoinInterleavedCgroups(t *testing.T) {
	left := task(100, 100, 5, "left")
	leftT := task(100, 104, 5, "left")
	right := task(200, 200, 6, "right")
	rightT := task(200, 205, 6, "right")
	recs := (&seqBuilder{}).
		add(begin(1, left.Process, left, 11)).
		add(mark(1, left.Process, left)).
		add(mark(0, rightT.Process, rightT)). // unrelated shortcut, other CPU
		add(end(1)).
		add(begin(2, right.Process, right, 22)).
		add(mark(0, leftT.Process, leftT)).
		add(mark(2, right.Process, right)).
		add(end(2)).
		add(mark(0, rightT.Process, rightT)).recs
	kills, j := run(AttachFentry, recs)
	if len(kills) != 2 {
		t.Fatalf("got %d events", len(kills))
	}
	if kills[0].Victim.Pid != 100 || kills[0].Scope.MemcgID != 11 ||
		kills[1].Victim.Pid != 200 || kills[1].Scope.MemcgID != 22 {
		t.Errorf("events crossed: %+v", kills)
	}
	if len(kills[0].Group)+len(kills[1].Group) != 0 || j.Stats.ShortcutMarks != 3 {
		t.Errorf("groups %v %v stats %+v", kills[0].Group, kills[1].Group, j.Stats)
	}

	markOnly := (&seqBuilder{}).
		add(mark(0, left.Process, left)).add(mark(0, right.Process, right)).
		add(mark(0, rightT.Process, rightT)).add(mark(0, leftT.Process, leftT)).recs
	kills, _ = run(AttachMarkVictimOnly, markOnly)
	if len(kills) != 2 || kills[0].Victim.Pid != 100 || kills[1].Victim.Pid != 200 {
		t.Errorf("mark-only interleaved: %+v", kills)
	}
}

// A pid reused by a new process (another start time) is a new kill.
func TestJoinPidReuse(t *testing.T) {
	again := task(100, 100, 50, "hog")
	kills, _ := run(AttachMarkVictimOnly, (&seqBuilder{}).
		add(mark(0, trigger, hog)).add(mark(0, trigger, again)).recs)
	if len(kills) != 2 {
		t.Fatalf("got %d events for two processes sharing a pid", len(kills))
	}
}

// A victim already exiting is marked and reaped but not killed: the kernel
// does not count it, and neither do we.
func TestJoinExitingVictim(t *testing.T) {
	b := begin(3, trigger, hog, 9)
	b.Exiting = true
	kills, j := run(AttachFentry, (&seqBuilder{}).add(b).add(mark(3, trigger, hog)).add(end(3)).recs)
	if len(kills) != 0 || j.Stats.SkippedExiting != 1 {
		t.Fatalf("kills %+v stats %+v", kills, j.Stats)
	}
}

// Records lost to a full ring buffer: an end that never came, a begin that
// never came. Each kill still comes out once.
func TestJoinLostRecords(t *testing.T) {
	recs := (&seqBuilder{}).
		add(begin(1, trigger, hog, 9)). // its end is lost
		add(begin(2, other.Process, other, 9)).
		add(end(2)).
		add(mark(3, third.Process, third)). // its begin is lost
		add(mark(3, third.Process, third)).
		add(end(3)).recs
	kills, j := run(AttachFentry, recs)
	if len(kills) != 3 {
		t.Fatalf("got %d events, want 3: %+v", len(kills), kills)
	}
	if kills[2].Scope != nil || kills[2].Victim.Pid != 300 {
		t.Errorf("orphan mark became %+v", kills[2])
	}
	if j.Stats.Flushed != 1 || j.Stats.OrphanEnds != 1 {
		t.Errorf("stats %+v", j.Stats)
	}

	// An end lost with nothing after it: closed once its thread has left
	// oom_kill_process(), never while it is still inside.
	var out []Kill
	j = NewJoiner(AttachFentry, func(k Kill) { out = append(out, k) })
	j.Feed(begin(9, trigger, hog, 9))
	left := func(uint32, uint64) bool { return false }
	inside := func(tid uint32, seq uint64) bool { return tid == trigger.Tid && seq == 9 }
	j.FlushLeft(0, left)
	if len(out) != 0 || !j.Pending() {
		t.Fatal("flushed a decision younger than the cut-off")
	}
	j.FlushLeft(^uint64(0), inside)
	if len(out) != 0 || !j.Pending() {
		t.Fatal("flushed a decision whose thread is still inside oom_kill_process()")
	}
	j.FlushLeft(^uint64(0), left)
	if len(out) != 1 || j.Pending() {
		t.Fatalf("a decision whose thread left was not closed: %+v", out)
	}
}

func sigkilledMark(seq uint64, current Process, victim Task) Record {
	r := mark(seq, current, victim)
	r.Sigkilled = true
	return r
}

func endKilled(seq uint64, memcg, killed uint32) Record {
	return Record{Kind: KindKillEnd, Seq: seq, MemcgKills: memcg, Kills: killed}
}

func runSignals(attach Attach, recs []Record) ([]Kill, *Joiner) {
	var kills []Kill
	j := NewJoiner(attach, func(k Kill) { kills = append(kills, k) })
	j.Signals = true
	j.wall = func(ns uint64) time.Time { return time.Unix(0, int64(ns)) }
	for _, r := range recs {
		j.Feed(r)
	}
	return kills, j
}

// With signal_generate hooked, a decision killed what its SIGKILLs say,
// whatever the victim's flags at entry.
func TestSignalCountedDecisions(t *testing.T) {
	dumping := begin(1, trigger, hog, 9)
	dumping.Exiting = true // SIGNAL_GROUP_EXIT while it dumps core: yet killed
	shortcut := begin(2, other.Process, other, 9)
	shortcut.Exiting = true
	recs := (&seqBuilder{}).
		add(dumping).
		add(sigkilledMark(1, trigger, hog)).
		add(endKilled(1, 1, 1)).
		add(shortcut).
		add(mark(2, other.Process, other)). // task_will_free_mem(victim): marked, no SIGKILL
		add(endKilled(2, 0, 0)).recs
	kills, j := runSignals(AttachFentry, recs)
	if len(kills) != 1 || kills[0].Victim.Pid != hog.Pid || kills[0].Kills() != 1 {
		t.Fatalf("got %+v, want the core-dumping victim's one kill", kills)
	}
	if j.Stats.SkippedExiting != 1 || j.Stats.Kills != 1 {
		t.Errorf("stats %+v", j.Stats)
	}
}

// A global OOM's group kill: the scan kills (and the kernel counts) the chosen
// victim again; marks say 5 processes, the SIGKILLs 6 kills.
func TestSignalCountedGlobalGroup(t *testing.T) {
	b := (&seqBuilder{}).add(Record{Kind: KindKillBegin, Seq: 4, Trigger: trigger, Task: hog})
	b.add(sigkilledMark(4, trigger, hog))
	for i := uint32(1); i <= 4; i++ {
		b.add(sigkilledMark(4, trigger, task(500+i, 500+i, 9, "member")))
	}
	b.add(endKilled(4, 0, 6)) // no memcg count: a global OOM
	kills, _ := runSignals(AttachKprobe, b.recs)
	if len(kills) != 1 || len(kills[0].Group) != 4 || kills[0].Kills() != 6 {
		t.Fatalf("got %+v, want one event of 6 kills with 4 group members", kills)
	}
}

// mark_victim mode with signal_generate: a mark is a kill exactly when the
// OOM killer's SIGKILL preceded it; a re-kill comes as its own record.
func TestSignalCountedMarks(t *testing.T) {
	reused := task(100, 100, 5, "hog") // same pid and start: a reused pid read partially
	reused.StartTime = 0
	rekill := Record{Kind: KindRekill, Trigger: trigger, Task: hog}
	rekilledMark := sigkilledMark(0, trigger, hogT3)
	rekilledMark.Rekilled = true
	recs := (&seqBuilder{}).
		add(sigkilledMark(0, trigger, hog)).
		add(mark(0, hogT2.Process, hogT2)). // a dying thread, task_will_free_mem(current)
		add(rekill).                        // the group scan kills it again
		add(rekilledMark).                  // ...marking another of its threads
		add(sigkilledMark(0, trigger, reused)).recs
	kills, j := runSignals(AttachMarkVictimOnly, recs)
	if len(kills) != 3 {
		t.Fatalf("got %d events, want 3 (kill, re-kill, kill of the reused pid): %+v", len(kills), kills)
	}
	if kills[0].Repeat || !kills[1].Repeat || kills[2].Repeat {
		t.Errorf("repeat flags %v %v %v, want false true false", kills[0].Repeat, kills[1].Repeat, kills[2].Repeat)
	}
	if j.Stats.ShortcutMarks != 2 || j.Stats.Kills != 3 {
		t.Errorf("stats %+v", j.Stats)
	}
	// Hooked, a re-kill outside a decision is some other path's SIGKILL.
	if kills, _ := runSignals(AttachFentry, []Record{rekill}); len(kills) != 0 {
		t.Errorf("hooked mode took a re-kill outside a decision for a kill: %+v", kills)
	}
}

func TestProcessSetBounded(t *testing.T) {
	s := newProcessSet(3)
	for pid := uint32(1); pid <= 5; pid++ {
		if !s.add(pid, 1) {
			t.Fatalf("pid %d not new", pid)
		}
	}
	if len(s.byPid) != 3 || len(s.order) != 3 {
		t.Fatalf("set grew to %d", len(s.byPid))
	}
	if s.add(5, 1) || !s.add(1, 1) {
		t.Error("eviction kept the wrong entries")
	}
	if s.add(5, 0) {
		t.Error("an unknown start time must match any")
	}
}

// A candidates record goes with the decision of its Seq that begins next;
// a stale one (its decision's begin lost) goes with none.
func TestJoinCandidates(t *testing.T) {
	cands := func(seq uint64, pids ...uint32) Record {
		r := Record{Kind: KindCandidates, Seq: seq, Candidates: Candidates{Scored: len(pids)}}
		for _, p := range pids {
			r.Candidates.List = append(r.Candidates.List, Candidate{Task: task(p, p, 1, "c"), Score: int64(p)})
		}
		return r
	}
	b := &seqBuilder{}
	b.add(cands(1, 100, 200)).add(begin(1, trigger, hog, 9)).add(mark(1, trigger, hog)).add(end(1))
	b.add(cands(2, 300)).add(begin(3, trigger, other, 9)).add(end(3))
	kills, _ := run(AttachFentry, b.recs)
	if len(kills) != 2 {
		t.Fatalf("%d kills, want 2", len(kills))
	}
	if c := kills[0].Candidates; c == nil || c.Scored != 2 || len(c.List) != 2 || c.List[1].Pid != 200 {
		t.Errorf("first decision's candidates: %+v", c)
	}
	if c := kills[1].Candidates; c != nil {
		t.Errorf("a candidates record of decision 2 went with decision 3: %+v", c)
	}
}

// A decision that chose nobody reaches OnNoKill, once, and counts.
func TestJoinNoKill(t *testing.T) {
	var got []NoKill
	j := NewJoiner(AttachKprobe, func(Kill) { t.Error("a no-kill decision made a kill") })
	j.wall = func(ns uint64) time.Time { return time.Unix(0, int64(ns)) }
	j.OnNoKill = func(n NoKill) { got = append(got, n) }
	j.Feed(Record{Kind: KindNoKill, BootNs: 5, Trigger: trigger, Scope: Scope{MemcgID: 9, Constraint: ConstraintMemcg},
		Candidates: Candidates{Scored: 1, Unkillable: 1}})
	if len(got) != 1 || got[0].Scope.MemcgID != 9 || got[0].Candidates.Unkillable != 1 || got[0].Trigger != trigger || j.Stats.NoKills != 1 {
		t.Errorf("no-kill: %+v, stats %+v", got, j.Stats)
	}
}
