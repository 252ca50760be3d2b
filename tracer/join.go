package tracer

import "time"

// JoinStats counts what the join saw besides kills; the daemon reports them.
type JoinStats struct {
	Decisions      uint64 // oom_kill_process() calls seen
	Kills          uint64 // processes killed (victims plus group members)
	ShortcutMarks  uint64 // mark_victim without a new kill (dying threads, repeats)
	SkippedExiting uint64 // decisions whose victim was already exiting: the kernel killed nothing
	OrphanEnds     uint64 // decision ends whose beginning was lost
	Flushed        uint64 // decisions closed by a timeout or a newer decision, their end lost
}

// Joiner turns the kernel's records into exactly one Kill per OOM decision.
//
// With oom_kill_process() hooked, a decision is framed by its begin and end
// records; the marks inside it (same decision number) are the processes it
// killed, and a mark outside any decision is a dying thread marked by the
// task_will_free_mem(current) shortcut: no kill. Without the hook, a mark is a
// kill the first time a process (pid + start time) is marked, a shortcut after.
//
// A Joiner is not safe for concurrent use; the reader feeds it from one goroutine.
type Joiner struct {
	attach Attach
	emit   func(Kill)
	wall   func(bootNs uint64) time.Time
	open   []*decision // in begin order; the kernel runs one at a time, so rarely >1
	seen   processSet
	Stats  JoinStats
}

type decision struct {
	begin   Record
	counted uint32 // from the end record
	group   []Process
	starts  []uint64 // start time of each group member, for the seen set
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
		j.open = append(j.open, &decision{begin: r})
	case KindKillEnd:
		for i, d := range j.open {
			if d.begin.Seq == r.Seq {
				j.open = append(j.open[:i], j.open[i+1:]...)
				d.counted = r.MemcgKills
				j.finish(d)
				return
			}
		}
		j.Stats.OrphanEnds++
	case KindMark:
		j.mark(r)
	}
}

func (j *Joiner) mark(r Record) {
	if r.Seq != 0 {
		for _, d := range j.open {
			if d.begin.Seq == r.Seq {
				d.add(r.Task)
				return
			}
		}
		// The decision's begin record was lost: judge the mark on its own.
	} else if j.attach != AttachMarkVictimOnly {
		// oom_kill_process() is hooked and this thread ran none: no kill.
		j.Stats.ShortcutMarks++
		return
	}
	if !j.seen.add(r.Task.Pid, r.Task.StartTime) {
		j.Stats.ShortcutMarks++
		return
	}
	j.Stats.Kills++
	j.emit(Kill{
		Time:    j.wall(r.BootNs),
		BootNs:  r.BootNs,
		Attach:  AttachMarkVictimOnly,
		Victim:  r.Task,
		Trigger: r.Trigger,
	})
}

// add records a process marked inside the decision. The victim itself and
// repeated marks of one process (one per thread) are not group members.
func (d *decision) add(t Task) {
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
	if b.Exiting {
		// task_will_free_mem(victim): marked, reaped, but not killed or counted.
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
		Scope:        &scope,
		KernelScore:  &score,
		Group:        d.group,
		MemcgCounted: int(d.counted),
	}
	j.Stats.Kills += uint64(k.Kills())
	j.emit(k)
}

// Pending reports whether a decision is waiting for its end record.
func (j *Joiner) Pending() bool { return len(j.open) > 0 }

// FlushOlder closes decisions that began before bootNs: their end record was
// lost (ring buffer full) or never comes (a kretprobe that missed).
func (j *Joiner) FlushOlder(bootNs uint64) {
	j.flush(func(d *decision) bool { return d.begin.BootNs < bootNs })
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
