package tracer

import "time"

// JoinStats counts what the join saw besides kills; the daemon reports them.
type JoinStats struct {
	Decisions      uint64 // oom_kill_process() calls seen
	Kills          uint64 // processes killed (victims plus group members)
	ShortcutMarks  uint64 // mark_victim without a new kill (dying threads, repeats)
	SkippedExiting uint64 // decisions that killed nothing (the victim was already exiting)
	OrphanEnds     uint64 // decision ends whose beginning was lost
	Flushed        uint64 // decisions closed by a timeout or a newer decision, their end lost
	NoKills        uint64 // out_of_memory() calls that chose nobody
	AllocRefused   uint64 // memory requests refused (alloc_refused records)
}

// Joiner turns the kernel's records into exactly one Kill per OOM decision.
//
// With oom_kill_process() hooked, a decision is framed by its begin and end
// records; the marks inside it (same decision number) are the processes it
// killed, and a mark outside any decision is a dying thread marked by the
// task_will_free_mem(current) shortcut: no kill.
//
// What the kernel counted is decided by what it did, where signal_generate
// is hooked (Signals): __oom_kill_process() counts a kill, sends SIGKILL and
// marks the victim; no shortcut sends the signal. So a hooked decision killed
// as many processes as its end record's SIGKILL count, whatever flags the
// victim had at entry (a core-dumping victim is "exiting" yet killed), and
// without the hook a mark is a kill exactly when its SIGKILL preceded it.
// Where the signal is not hooked, the fallback is the victim's exit flags at
// entry and, without oom_kill_process(), a kill the first time a process
// (pid + start time) is marked.
//
// A Joiner is not safe for concurrent use; the reader feeds it from one goroutine.
type Joiner struct {
	attach Attach
	// Signals: signal_generate is hooked, attached before anything else.
	Signals bool
	emit    func(Kill)
	wall    func(bootNs uint64) time.Time
	open    []*decision // in begin order; the kernel runs one at a time, so rarely >1
	seen    processSet
	Stats   JoinStats
	// OnNoKill, when set, gets each out_of_memory() call that chose nobody.
	OnNoKill func(NoKill)
	// OnAllocRefused, when set, gets each memory request the kernel refused.
	OnAllocRefused func(AllocRefused)
	// cands is the last candidates record, for the begin record with its Seq.
	cands *Record
	// stacks are stack records waiting for their begin or mark record.
	stacks []pendingStack
}

type decision struct {
	begin   Record
	counted uint32 // from the end record: the OOM memcg's oom_kill growth
	killed  uint32 // from the end record: kills its SIGKILLs show
	ended   bool   // the end record arrived
	group   []Process
	starts  []uint64 // start time of each group member, for the seen set
	cands   *Candidates
	stack   *KernelStack
}

// NewJoiner returns a Joiner for the given attach mode that passes each kill to emit.
func NewJoiner(attach Attach, emit func(Kill)) *Joiner {
	return &Joiner{attach: attach, emit: emit, wall: BootToWall, seen: newProcessSet(8192)}
}

// Feed takes the next record in ring buffer order.
func (j *Joiner) Feed(r Record) {
	switch r.Kind {
	case KindKillBegin:
		// oom_lock serialises decisions: one still open lost its end record.
		j.flush(func(*decision) bool { return true })
		j.Stats.Decisions++
		d := &decision{begin: r, stack: j.takeStack(r.Trigger.Tid, r.Seq)}
		if c := j.cands; c != nil && c.Seq == r.Seq {
			d.cands = &c.Candidates
		}
		j.cands = nil
		j.open = append(j.open, d)
	case KindCandidates:
		j.cands = &r
	case KindStack:
		j.keepStack(r)
	case KindNoKill:
		j.Stats.NoKills++
		if j.OnNoKill != nil {
			j.OnNoKill(NoKill{Time: j.wall(r.BootNs), BootNs: r.BootNs, Trigger: r.Trigger, Scope: r.Scope, Candidates: r.Candidates})
		}
	case KindAllocRefused:
		j.Stats.AllocRefused++
		if j.OnAllocRefused != nil && r.Alloc != nil {
			a := *r.Alloc
			a.Time = j.wall(r.BootNs)
			j.OnAllocRefused(a)
		}
	case KindKillEnd:
		for i, d := range j.open {
			if d.begin.Seq == r.Seq {
				j.open = append(j.open[:i], j.open[i+1:]...)
				d.counted, d.killed, d.ended = r.MemcgKills, r.Kills, true
				j.finish(d)
				return
			}
		}
		j.Stats.OrphanEnds++
	case KindMark:
		j.mark(r)
	case KindRekill:
		j.rekill(r)
	}
}

// rekill is the OOM killer's SIGKILL to a process it had marked already,
// seen outside any hooked decision: memory.oom.group's scan kills the chosen
// victim again, and the kernel counts it again. Hooked decisions count these
// in their end record, so there it is some other path's SIGKILL.
func (j *Joiner) rekill(r Record) {
	if j.attach != AttachMarkVictimOnly {
		return
	}
	j.Stats.Kills++
	j.emit(Kill{
		Time:    j.wall(r.BootNs),
		BootNs:  r.BootNs,
		Attach:  AttachMarkVictimOnly,
		Victim:  r.Task,
		Trigger: r.Trigger,
		Repeat:  true,
	})
}

func (j *Joiner) mark(r Record) {
	var stack *KernelStack
	if r.Seq == 0 {
		stack = j.takeStack(r.Trigger.Tid, 0)
	}
	if r.Seq != 0 {
		for _, d := range j.open {
			if d.begin.Seq == r.Seq {
				d.add(r, j.Signals)
				return
			}
		}
		// The decision's begin record was lost: judge the mark on its own.
	} else if j.attach != AttachMarkVictimOnly {
		// oom_kill_process() is hooked and this thread ran none: no kill.
		j.Stats.ShortcutMarks++
		return
	}
	if j.Signals {
		// A kill exactly when the OOM killer's SIGKILL preceded the
		// mark; a re-killed process's kill came as its own record.
		if !r.Sigkilled || r.Rekilled {
			j.Stats.ShortcutMarks++
			return
		}
	} else if !j.seen.add(r.Task.Pid, r.Task.StartTime) {
		j.Stats.ShortcutMarks++
		return
	}
	j.Stats.Kills++
	k := Kill{
		Time:    j.wall(r.BootNs),
		BootNs:  r.BootNs,
		Attach:  AttachMarkVictimOnly,
		Victim:  r.Task,
		Trigger: r.Trigger,
		// The marking thread is the deciding one: __oom_kill_process()
		// marks the victim from inside its out_of_memory().
		TriggerStack: stack,
	}
	if r.ScopeFrom == ScopeFromStack {
		scope, score := r.Scope, r.KernelScore
		k.Scope, k.KernelScore, k.ScopeFrom = &scope, &score, ScopeFromStack
	}
	j.emit(k)
}

// add records a process marked inside the decision. The victim itself and
// repeated marks of one process (one per thread) are not group members.
func (d *decision) add(r Record, signals bool) {
	t := r.Task
	if signals && !r.Sigkilled {
		return // marked without being killed: task_will_free_mem(victim)
	}
	if t.Pid == d.begin.Task.Pid {
		return
	}
	for _, g := range d.group {
		if g.Pid == t.Pid {
			return
		}
	}
	d.group = append(d.group, t.Process)
	d.starts = append(d.starts, t.StartTime)
}

func (j *Joiner) finish(d *decision) {
	b := d.begin
	signalCount := j.Signals && d.ended
	if (signalCount && d.killed == 0) || (!signalCount && b.Exiting) {
		// task_will_free_mem(victim): marked, reaped, but not killed or
		// counted (or find_lock_task_mm() found no thread with an mm).
		j.Stats.SkippedExiting++
		return
	}
	score, scope := b.KernelScore, b.Scope
	j.seen.add(b.Task.Pid, b.Task.StartTime)
	for i, g := range d.group {
		j.seen.add(g.Pid, d.starts[i])
	}
	k := Kill{
		Time:         j.wall(b.BootNs),
		BootNs:       b.BootNs,
		Attach:       j.attach,
		Victim:       b.Task,
		Trigger:      b.Trigger,
		TriggerStack: d.stack,
		Scope:        &scope,
		KernelScore:  &score,
		ScopeFrom:    ScopeFromHook,
		Group:        d.group,
		MemcgCounted: int(d.counted),
		Candidates:   d.cands,
	}
	if signalCount {
		k.SignalCounted = int(d.killed)
	}
	j.Stats.Kills += uint64(k.Kills())
	j.emit(k)
}

// beganAt is the boot time of open decision seq's begin record, 0 if none.
func (j *Joiner) beganAt(seq uint64) uint64 {
	for _, d := range j.open {
		if d.begin.Seq == seq {
			return d.begin.BootNs
		}
	}
	return 0
}

// Pending reports whether a decision is waiting for its end record.
func (j *Joiner) Pending() bool { return len(j.open) > 0 }

// FlushLeft closes the decisions that began before bootNs and whose thread
// has left oom_kill_process() (inside reports it still there): their end
// record was lost (ring buffer full) or never comes (a kretprobe that
// missed). A decision still running is never closed, however long it takes:
// one of a large memory.oom.group prints a line per member on a console
// that may hold the CPU a millisecond or two each.
func (j *Joiner) FlushLeft(bootNs uint64, inside func(tid uint32, seq uint64) bool) {
	j.flush(func(d *decision) bool {
		return d.begin.BootNs < bootNs && !inside(d.begin.Trigger.Tid, d.begin.Seq)
	})
}

// FlushAll closes every open decision, at shutdown.
func (j *Joiner) FlushAll() { j.flush(func(*decision) bool { return true }) }

func (j *Joiner) flush(match func(*decision) bool) {
	kept := j.open[:0]
	var done []*decision
	for _, d := range j.open {
		if match(d) {
			done = append(done, d)
		} else {
			kept = append(kept, d)
		}
	}
	j.open = kept
	for _, d := range done {
		j.Stats.Flushed++
		j.finish(d)
	}
}

// processSet remembers processes already counted as killed, by pid and start
// time, bounded: the oldest entries go first. A start time of 0 (unknown)
// matches any start time of the same pid.
type processSet struct {
	max   int
	byPid map[uint32]uint64
	order []uint32
}

func newProcessSet(max int) processSet {
	return processSet{max: max, byPid: make(map[uint32]uint64)}
}

// add records the process and reports whether it was new.
func (s *processSet) add(pid uint32, start uint64) bool {
	if old, ok := s.byPid[pid]; ok && (old == start || old == 0 || start == 0) {
		return false
	}
	if _, ok := s.byPid[pid]; !ok {
		s.order = append(s.order, pid)
	}
	s.byPid[pid] = start
	if len(s.order) > s.max {
		delete(s.byPid, s.order[0])
		s.order = s.order[1:]
	}
	return true
}
