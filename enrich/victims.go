package enrich

import (
	"sync"
	"time"
)

// victimSet remembers the processes the OOM killer chose lately, so the
// model's candidate list leaves them out, both from its /proc reads and
// from a list read before they were killed.
//
// The kernel does the same: oom_evaluate_task() skips a victim whose memory
// the reaper is done with (MMF_OOM_SKIP) and stops the whole selection
// while one is still exiting, so a victim never competes again. And not
// reading them matters: a victim's task lock is held while the kernel
// prints its "Killed process" line, right after the mark that wakes the
// daemon, and opening /proc/PID of it spun on that lock (perf, a storm: a
// third of the daemon's CPU per kill, in task_dump_owner).
type victimSet struct {
	mu sync.Mutex
	at map[uint32]time.Time
}

// victimMemory is how long a victim is remembered: far longer than a
// victim takes to exit, far shorter than pid reuse on a busy node.
const victimMemory = 30 * time.Second

// maxVictims bounds the set in a storm; the oldest half goes first.
const maxVictims = 1024

func (v *victimSet) add(now time.Time, pids ...uint32) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.at == nil {
		v.at = map[uint32]time.Time{}
	}
	if len(v.at) >= maxVictims {
		for pid, t := range v.at {
			if now.Sub(t) > victimMemory/2 {
				delete(v.at, pid)
			}
		}
		if len(v.at) >= maxVictims {
			clear(v.at)
		}
	}
	for _, pid := range pids {
		if pid != 0 {
			v.at[pid] = now
		}
	}
}

func (v *victimSet) has(pid uint32, now time.Time) bool {
	v.mu.Lock()
	defer v.mu.Unlock()
	t, ok := v.at[pid]
	if ok && now.Sub(t) > victimMemory {
		delete(v.at, pid)
		return false
	}
	return ok
}
