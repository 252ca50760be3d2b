package ledger

// Missed is one cgroup's kills while no tracer ran.
type Missed struct {
	Path  string
	ID    uint64
	Kills uint64
	// New says the cgroup was not in the saved state (created while the
	// tracer was down, or recreated: another id at the same path), so all
	// of its count is missed.
	New bool
}

// Compare says what grew from then to now: the machine's kills
// (/proc/vmstat), and each cgroup whose counter grew, in now's order. A
// cgroup in then but not in now was removed: its kills are in the
// machine's count only. A cgroup in now but not in then (or at the same
// path with another id) counts from zero.
func Compare(then, now State) (machine uint64, cgroups []Missed) {
	if now.VMStatOOMKill > then.VMStatOOMKill {
		machine = now.VMStatOOMKill - then.VMStatOOMKill
	}
	old := make(map[string]Cgroup, len(then.Cgroups))
	for _, c := range then.Cgroups {
		old[c.Path] = c
	}
	for _, c := range now.Cgroups {
		o, ok := old[c.Path]
		isNew := !ok || (o.ID != 0 && c.ID != 0 && o.ID != c.ID)
		var base uint64
		if !isNew {
			base = o.OOMKill
		}
		if c.OOMKill > base {
			cgroups = append(cgroups, Missed{Path: c.Path, ID: c.ID, Kills: c.OOMKill - base, New: isNew})
		}
	}
	return machine, cgroups
}
