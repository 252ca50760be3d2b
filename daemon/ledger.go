package daemon

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/oomtrace/oomtrace/event"
	"github.com/oomtrace/oomtrace/kernel/cgroupfs"
	"github.com/oomtrace/oomtrace/kernel/kmsg"
	"github.com/oomtrace/oomtrace/kernel/procfs"
	"github.com/oomtrace/oomtrace/ledger"
	"github.com/rs/zerolog"
)

// ledgerInterval is how often the running daemon saves the kernel's
// counters (and at stop): the timer wakes the idle daemon once per
// interval only.
const ledgerInterval = 5 * time.Minute

// ledgerAfterKill is how soon after a traced kill the ledger is saved
// again (once for a whole storm): a crash then makes the next start
// report and backfill, again, only the kills of the last few seconds.
const ledgerAfterKill = 5 * time.Second

// keeper is the daemon's ledger: what the previous run saved, what this
// one saves. Used from Run's goroutine, then from the saver's alone.
type keeper struct {
	dir    string
	log    zerolog.Logger
	h      cgroupfs.Hierarchy
	hasH   bool
	bootID string

	prev    ledger.State
	prevErr error // ledger.ErrNoState, a *CorruptError, or another read error

	mu      sync.Mutex // the saver's goroutine and the final save
	kmsgOK  bool
	kmsgSeq uint64
	warned  bool // state_dir_error said once

	kicks chan struct{} // a traced kill: save soon

	// Startup's kernel log: the kills logged before the hooks attached.
	kills   kmsg.Collector
	attachT time.Duration // CLOCK_MONOTONIC at attach
}

// openLedger loads the previous state and reads the kernel log up to now,
// before the hooks attach. nil when --state-dir is "".
func openLedger(dir string, log zerolog.Logger) *keeper {
	if dir == "" {
		return nil
	}
	k := &keeper{dir: dir, log: log, kicks: make(chan struct{}, 1)}
	if h, err := cgroupfs.FindMemoryHierarchy(); err == nil {
		k.h, k.hasH = h, true
	}
	k.bootID, _ = procfs.BootID()
	k.prev, k.prevErr = ledger.Load(dir)
	from, all := uint64(0), true
	var savedAt time.Duration // records logged before were the saving run's
	if k.sameBoot() {
		if k.prev.KmsgSeq != nil {
			from, all = *k.prev.KmsgSeq, false
		} else {
			savedAt = time.Duration(k.prev.MonotonicNs)
		}
	}
	// Everything logged until now predates the hooks: backfill it all.
	last, err := kmsg.Read(from, all, func(r kmsg.Record) {
		if time.Duration(r.TsUsec)*time.Microsecond > savedAt {
			k.kills.Add(r)
		}
	})
	if err != nil {
		event.Write(log, zerolog.WarnLevel, event.NewDiagnostic("kmsg_unavailable",
			fmt.Errorf("%w: kills while the tracer was down are counted, not named (needs CAP_SYSLOG)", err)))
		return k
	}
	k.kmsgOK, k.kmsgSeq = true, last
	return k
}

func (k *keeper) sameBoot() bool {
	return k.prevErr == nil && k.bootID != "" && k.prev.BootID == k.bootID
}

// attached is called once the hooks are attached: records logged since
// openLedger read the log and before now are backfilled too; later ones
// the tracer saw itself.
func (k *keeper) attached() {
	k.attachT = kmsg.Monotonic()
	if !k.kmsgOK {
		return
	}
	last, err := kmsg.Read(k.kmsgSeq, false, func(r kmsg.Record) {
		if time.Duration(r.TsUsec)*time.Microsecond < k.attachT {
			k.kills.Add(r)
		}
	})
	if err == nil {
		k.kmsgSeq = last
	}
}

// current reads the kernel's counters now.
func (k *keeper) current() (ledger.State, error) {
	s := ledger.State{Version: ledger.Version, BootID: k.bootID, SavedAt: time.Now(), Cgroups: []ledger.Cgroup{},
		MonotonicNs: uint64(kmsg.Monotonic())}
	var err error
	if s.VMStatOOMKill, err = procfs.VMStatOOMKill(); err != nil {
		return s, err
	}
	if k.hasH {
		if s.Cgroups, err = ledger.CgroupCounts(k.h); err != nil {
			return s, err
		}
	}
	if k.kmsgOK {
		s.KmsgSeq = &k.kmsgSeq
	}
	return s, nil
}

// report writes what happened while no tracer ran: the kills the kernel
// logged, then oom_missed per cgroup and for the machine, or one
// oom_missed_unknown; and starts this run's ledger.
func (k *keeper) report() {
	boot := time.Now().Add(-kmsg.Monotonic())
	for _, b := range k.kills.Kills {
		event.Write(k.log, zerolog.InfoLevel, kmsgKillEvent(b, boot))
	}
	k.kills = kmsg.Collector{}
	now, err := k.current()
	if err != nil {
		event.Write(k.log, zerolog.WarnLevel, event.MissedUnknown{
			Time: time.Now(), SchemaVersion: event.SchemaVersion, Reason: event.MissedUnreadable, Error: err.Error()})
		return
	}
	switch {
	case errors.Is(k.prevErr, ledger.ErrNoState):
		k.unknown(event.MissedNoState, nil)
	case k.prevErr != nil:
		k.unknown(event.MissedCorrupt, k.prevErr)
	case !k.sameBoot():
		k.unknown(event.MissedOtherBoot, nil)
	default:
		machine, cgroups := ledger.Compare(k.prev, now)
		for _, m := range cgroups {
			event.Write(k.log, zerolog.WarnLevel, event.Missed{
				Time: time.Now(), SchemaVersion: event.SchemaVersion, Scope: "cgroup", Kills: m.Kills,
				Cgroup: &event.MissedCgroup{Path: m.Path, ID: m.ID, New: m.New}, Since: k.prev.SavedAt,
			})
		}
		level := zerolog.InfoLevel
		if machine > 0 {
			level = zerolog.WarnLevel
		}
		event.Write(k.log, level, event.Missed{
			Time: time.Now(), SchemaVersion: event.SchemaVersion, Scope: "machine", Kills: machine, Since: k.prev.SavedAt,
		})
	}
	k.store(now)
}

func (k *keeper) unknown(reason string, err error) {
	m := event.MissedUnknown{Time: time.Now(), SchemaVersion: event.SchemaVersion, Reason: reason}
	if err != nil {
		m.Error = err.Error()
	}
	if k.prevErr == nil {
		m.Since = event.Ptr(k.prev.SavedAt)
	}
	event.Write(k.log, zerolog.WarnLevel, m)
}

func (k *keeper) store(s ledger.State) {
	err := os.MkdirAll(k.dir, 0o700)
	if err == nil {
		err = ledger.Save(k.dir, s)
	}
	if err != nil && !k.warned {
		k.warned = true
		event.Write(k.log, zerolog.WarnLevel, event.NewDiagnostic("state_dir_error", err))
	}
}

// save reads the counters and the kernel log up to now (emitting nothing:
// the tracer saw those kills) and stores them.
func (k *keeper) save() {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.kmsgOK {
		if last, err := kmsg.Read(k.kmsgSeq, false, func(kmsg.Record) {}); err == nil {
			k.kmsgSeq = last
		}
	}
	s, err := k.current()
	if err != nil {
		if !k.warned {
			k.warned = true
			event.Write(k.log, zerolog.WarnLevel, event.NewDiagnostic("state_dir_error", fmt.Errorf("reading the counters: %w", err)))
		}
		return
	}
	k.store(s)
}

// killed says a kill was traced: the ledger is saved within
// ledgerAfterKill. Never blocks (the writer's goroutine calls it).
func (k *keeper) killed() {
	select {
	case k.kicks <- struct{}{}:
	default:
	}
}

// run saves every ledgerInterval, soon after traced kills, and once more
// when stop is closed.
func (k *keeper) run(stop <-chan struct{}) {
	t := time.NewTicker(ledgerInterval)
	defer t.Stop()
	var soon <-chan time.Time // armed by a kill, nil otherwise
	for {
		select {
		case <-t.C:
			k.save()
		case <-k.kicks:
			if soon == nil {
				soon = time.After(ledgerAfterKill)
			}
		case <-soon:
			soon = nil
			k.save()
		case <-stop:
			k.save()
			return
		}
	}
}

// kmsgKillEvent is the oom_kill line of a kill the kernel logged while no
// tracer ran: what the log says, nothing more.
func kmsgKillEvent(b kmsg.Backfilled, boot time.Time) event.Kill {
	kb := uint64(os.Getpagesize() / 1024)
	k := b.Kill
	at := time.Duration(b.Record.TsUsec) * time.Microsecond
	ev := event.Kill{
		Time: boot.Add(at), SchemaVersion: event.SchemaVersion, BootNs: uint64(at.Nanoseconds()),
		Attach: "kmsg", Source: event.SourceKmsg,
		Victim: event.Victim{
			Pid: k.Pid, Comm: k.Comm, UID: k.UID,
			Pages:   event.Pages{Anon: k.AnonKB / kb, File: k.FileKB / kb, Shmem: k.ShmemKB / kb},
			Cgroup:  event.Cgroup{Chain: []event.Memcg{}},
			Unknown: []string{"tid", "start_time_ns", "swap"},
		},
		Group: []event.Process{}, Kills: 1, EnrichErrors: map[string]string{},
		Container: event.Container{Labels: map[string]any{}}, Candidates: []event.Candidate{},
	}
	if k.OOMScoreAdj != nil {
		ev.Victim.OOMScoreAdj = *k.OOMScoreAdj
	} else {
		ev.Victim.Unknown = append(ev.Victim.Unknown, "oom_score_adj")
	}
	if k.PgtablesKB != nil {
		ev.Victim.Pages.PgTables = *k.PgtablesKB / kb
	} else {
		ev.Victim.Unknown = append(ev.Victim.Unknown, "pgtables")
	}
	if s := b.Summary; s != nil {
		ev.Victim.Cgroup.Path = event.OptStr(s.TaskMemcg)
		ev.OOM.Source = event.Ptr(event.SourceKmsg)
		ev.OOM.Constraint = event.Ptr(strings.ToLower(strings.TrimPrefix(s.Constraint, "CONSTRAINT_")))
		ev.OOM.Memcg.Path = event.OptStr(s.OOMMemcg)
	} else {
		ev.Victim.Unknown = append(ev.Victim.Unknown, "cgroup")
		ev.EnrichErrors["cgroup"] = "no oom-kill summary line in the kernel log for this kill (the kernel rate-limits them)"
	}
	return ev
}
