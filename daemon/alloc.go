package daemon

import (
	"context"
	"os"
	"sync"
	"time"

	"github.com/oomtrace/oomtrace/enrich"
	"github.com/oomtrace/oomtrace/event"
	"github.com/oomtrace/oomtrace/kernel/commit"
	"github.com/oomtrace/oomtrace/kernel/procfs"
	"github.com/oomtrace/oomtrace/tracer"
	"github.com/rs/zerolog"
	"golang.org/x/sys/unix"
)

// allocWindow: at most one alloc_refused line per process and syscall per
// window. A program that retries a refused mmap in a loop is refused
// millions of times a second.
const allocWindow = time.Second

// accountingTTL is how long a read of the node's commit accounting serves
// the refusals that follow: a loop of them reads /proc/meminfo ten times a
// second, not once per refusal.
const accountingTTL = 100 * time.Millisecond

// refusal is one refused request, classified when it was read.
type refusal struct {
	tracer.AllocRefused
	decision commit.Decision
	acct     *commit.Accounting // nil when unread
	limits   *commit.Limits     // nil when unread (the process is gone)
	errs     map[string]string
}

// allocKey is what refusals aggregate by.
type allocKey struct {
	pid       uint32
	startTime uint64
	syscall   tracer.Syscall
}

// allocLine is one alloc_refused line: the latest refusal, standing for
// Repeats of them.
type allocLine struct {
	refusal
	Repeats uint64
}

type allocScope struct {
	lastLine time.Time
	pending  uint64  // refusals since the last line
	latest   refusal // the newest record: its rule stands for the refusals counted after it
	seen     uint64  // the BPF side's count accounted for
	// readAt is the boot time just before the BPF count was last read: a
	// record sent before it was counted by that read.
	readAt uint64
	// idle: its last window ended with nothing pending. Its record of
	// seen is kept while the process lives (the BPF count goes on).
	idle bool
}

// allocRefusals aggregates refusals per process and syscall the way
// noKills aggregates no-kill decisions per scope: the first makes a line at
// once; those within the window after it wait, and go out as one line when
// it ends. The BPF side sends a record at most every 10 ms per process and
// syscall, each with its count so far, and counts on between them: at a
// window's end, count says how many came since (nil: no such counts).
// Every refusal is passed to counted once. Used from one goroutine.
type allocRefusals struct {
	keys    map[allocKey]*allocScope
	count   func(allocKey) (uint64, bool)
	bootNow func() uint64 // tracer.BootNow, the clock of the records' BootNs
	alive   func(allocKey) bool
	counted func(r refusal, n uint64)
}

func newAllocRefusals(count func(allocKey) (uint64, bool), counted func(refusal, uint64)) *allocRefusals {
	return &allocRefusals{keys: map[allocKey]*allocScope{}, count: count, counted: counted, alive: processAlive, bootNow: tracer.BootNow}
}

// processAlive: the process has not exited (a pid reused since is another
// key, and ages out the same way).
func processAlive(k allocKey) bool {
	return unix.Kill(int(k.pid), 0) != unix.ESRCH
}

// take accounts for the BPF side's count n: what it adds to seen (all of
// it when the count restarted, its map entry aged out and made again).
func (s *allocScope) take(n uint64) uint64 {
	d := n - s.seen
	if n < s.seen {
		d = n
	}
	s.seen = n
	return d
}

func (a *allocRefusals) add(r refusal, now time.Time) (allocLine, bool) {
	k := allocKey{r.Task.Pid, r.Task.StartTime, r.Syscall}
	s := a.keys[k]
	if s == nil {
		s = &allocScope{}
		a.keys[k] = s
	}
	if c := max(r.Count, 1); c <= s.seen && r.BootNs <= s.readAt {
		// Sent before the BPF count was last read, which counted it: the
		// writer was slower than the window (seen under emulation: such
		// records had been taken for a restarted count, 869 refusals too
		// many in 10,000).
		return allocLine{}, false
	}
	n := s.take(max(r.Count, 1))
	s.latest = r
	if n == 0 {
		return allocLine{}, false // counted already, from the map
	}
	a.counted(r, n)
	s.pending += n
	wasIdle := s.idle
	s.idle = false
	if !wasIdle && !s.lastLine.IsZero() && now.Sub(s.lastLine) < allocWindow {
		return allocLine{}, false
	}
	return s.flush(now), true
}

// refresh adds the refusals the BPF side counted since s's last record.
func (a *allocRefusals) refresh(k allocKey, s *allocScope) {
	if a.count == nil {
		return
	}
	readAt := a.bootNow()
	if c, ok := a.count(k); ok {
		s.readAt = readAt
		if n := s.take(c); n > 0 {
			a.counted(s.latest, n)
			s.pending += n
		}
	}
}

func (s *allocScope) flush(now time.Time) allocLine {
	l := allocLine{refusal: s.latest, Repeats: s.pending}
	s.pending, s.lastLine = 0, now
	return l
}

// due returns the lines whose window ended with refusals pending; a key
// whose window ended quiet goes idle, and is forgotten once its process is.
func (a *allocRefusals) due(now time.Time) []allocLine {
	var lines []allocLine
	for k, s := range a.keys {
		if s.idle {
			if !a.alive(k) {
				delete(a.keys, k)
			}
			continue
		}
		if now.Sub(s.lastLine) < allocWindow {
			continue
		}
		a.refresh(k, s)
		if s.pending == 0 {
			s.idle = true
			if !a.alive(k) {
				delete(a.keys, k)
			}
			continue
		}
		lines = append(lines, s.flush(now))
	}
	return lines
}

// all returns every pending line, at shutdown.
func (a *allocRefusals) all(now time.Time) []allocLine {
	var lines []allocLine
	for k, s := range a.keys {
		a.refresh(k, s)
		if s.pending > 0 {
			lines = append(lines, s.flush(now))
		}
	}
	return lines
}

// next is the earliest end of a window still open; zero when there is none.
func (a *allocRefusals) next() time.Time {
	var at time.Time
	for _, s := range a.keys {
		if s.idle {
			continue
		}
		if end := s.lastLine.Add(allocWindow); at.IsZero() || end.Before(at) {
			at = end
		}
	}
	return at
}

// classifier reads what decides a refusal, at its arrival: the node's
// commit accounting (cached for accountingTTL) and the process's rlimits.
type classifier struct {
	procRoot   string
	pageSize   uint64
	now        func() time.Time
	limits     func(pid int) (commit.Limits, error)
	privileged func(pid int) bool

	mu     sync.Mutex
	readAt time.Time
	acct   commit.Accounting
	err    error
}

func newClassifier() *classifier {
	return &classifier{
		procRoot: "/proc", pageSize: uint64(os.Getpagesize()), now: time.Now, limits: commit.ReadLimits,
		privileged: func(pid int) bool {
			st, err := procfs.ReadStatus(pid)
			return err == nil && st.CapEff&(1<<procfs.CapSysAdmin) != 0
		},
	}
}

func (c *classifier) accounting() (commit.Accounting, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if now := c.now(); c.readAt.IsZero() || now.Sub(c.readAt) >= accountingTTL {
		c.acct, c.err = commit.ReadAccounting(c.procRoot)
		c.readAt = now
	}
	return c.acct, c.err
}

func (c *classifier) classify(a tracer.AllocRefused) refusal {
	r := refusal{AllocRefused: a, errs: map[string]string{}}
	acct, err := c.accounting()
	if err != nil {
		r.errs["commit"] = err.Error()
	} else {
		r.acct = &acct
	}
	lim, err := c.limits(int(a.Task.Pid))
	if err != nil {
		r.errs["rlimit"] = err.Error()
		lim = commit.Limits{AS: commit.Unlimited, Data: commit.Unlimited}
	} else {
		r.limits = &lim
	}
	req := commit.Request{
		Bytes: chargedBytes(a), ForkLike: a.Syscall.ForkLike(),
		TotalVMPages: a.TotalVMPages, DataPages: a.DataPages,
	}
	if r.acct != nil && r.acct.Mode == commit.ModeNever {
		req.Privileged = c.privileged(int(a.Task.Pid))
	}
	if r.acct == nil {
		r.decision = commit.Decision{Rule: commit.RuleOther}
		if !req.ForkLike {
			// The rlimits alone, without the node's accounting.
			r.decision = commit.Classify(req, commit.Accounting{Mode: commit.ModeAlways}, lim, c.pageSize)
		}
		return r
	}
	if a.Thread {
		// No mm copied, nothing charged: no commit rule applies.
		r.decision = commit.Decision{Rule: commit.RuleOther}
		return r
	}
	r.decision = commit.Classify(req, *r.acct, lim, c.pageSize)
	return r
}

// chargedBytes is what the kernel weighed: mremap charges only its growth.
func chargedBytes(a tracer.AllocRefused) uint64 {
	if a.Syscall == tracer.SyscallMremap {
		if a.RequestBytes > a.OldLen {
			return a.RequestBytes - a.OldLen
		}
		return 0
	}
	return a.RequestBytes
}

// allocEvent is the alloc_refused line of l, as r enriched it.
func allocEvent(l allocLine, r enrich.AllocResult, pageSize uint64) event.AllocRefused {
	a := l.AllocRefused
	ev := event.AllocRefused{
		Time: a.Time, SchemaVersion: event.SchemaVersion, BootNs: a.BootNs, Repeats: l.Repeats,
		Syscall: string(a.Syscall), RequestBytes: a.RequestBytes, Ret: a.Ret,
		Process: event.AllocProcess{Pid: a.Task.Pid, Tid: a.Task.Tid, Comm: a.Task.Comm, UID: a.Task.UID, StartTimeNs: a.Task.StartTime},
		Cgroup:  event.AllocCgroup{ID: a.Task.CgroupID, DflID: a.Task.DflCgroupID, Path: event.OptStr(r.CgroupPath)},
		Rule:    string(l.decision.Rule),
		Commit: event.Commit{
			RequestBytes: chargedBytes(a), TotalVMBytes: a.TotalVMPages * pageSize, DataBytes: a.DataPages * pageSize,
		},
		EnrichErrors: map[string]string{},
	}
	ev.Container = containerEvent(enrich.Result{Container: r.Container, Docker: r.Docker, CRI: r.CRI})
	ev.K8s = k8sEvent(enrich.Result{Container: r.Container, CRI: r.CRI})
	if c := l.acct; c != nil {
		ev.Commit.Mode, ev.Commit.Ratio, ev.Commit.Kbytes = event.Ptr(c.Mode), event.Ptr(c.Ratio), event.Ptr(c.Kbytes)
		ev.Commit.LimitBytes, ev.Commit.CommittedBytes = event.Ptr(c.CommitLimitBytes), event.Ptr(c.CommittedBytes)
		ev.Commit.RAMBytes, ev.Commit.SwapBytes = event.Ptr(c.MemTotalBytes), event.Ptr(c.SwapTotalBytes)
		if c.Mode == commit.ModeNever {
			ev.Commit.ReserveBytes = event.Ptr(l.decision.ReserveBytes)
		}
	}
	if lim := l.limits; lim != nil {
		if lim.AS != commit.Unlimited {
			ev.Commit.RlimitAS = event.Ptr(lim.AS)
		}
		if lim.Data != commit.Unlimited {
			ev.Commit.RlimitData = event.Ptr(lim.Data)
		}
	}
	for k, v := range l.errs {
		ev.EnrichErrors[k] = v
	}
	for k, v := range r.Errors {
		ev.EnrichErrors[k] = v
	}
	return ev
}

func (w *writer) handleAlloc(a tracer.AllocRefused) {
	r := w.classifier.classify(a)
	if l, ok := w.allocs.add(r, time.Now()); ok {
		w.writeAllocs([]allocLine{l})
	}
}

func (w *writer) writeAllocs(lines []allocLine) {
	for _, l := range lines {
		r := w.enricher.EnrichAlloc(context.Background(), l.AllocRefused)
		event.Write(w.log, zerolog.WarnLevel, allocEvent(l, r, w.classifier.pageSize))
	}
}
