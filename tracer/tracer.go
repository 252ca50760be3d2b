// Package tracer loads the oomtrace BPF program, attaches it with fallbacks,
// reads its ring buffer and joins the kernel's records into one Kill per OOM
// decision.
package tracer

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/ringbuf"
	"github.com/cilium/ebpf/rlimit"
	"github.com/oomtrace/oomtrace/internal/fdwait"
	"github.com/oomtrace/oomtrace/kernel/procfs"
)

// Config chooses the hooks; the zero value attaches the best the kernel allows.
type Config struct {
	KillHook KillHook
	MarkHook MarkHook
	// RingBufferSize in bytes (a power of two, at least the page size);
	// 0 keeps the object's 256 KiB, about a thousand records.
	RingBufferSize uint32
	// Candidates is how many of the tasks the kernel weighed each decision
	// keeps (at most MaxCandidates); 0 keeps DefaultCandidates,
	// CandidatesOff leaves out_of_memory() and oom_badness() unhooked.
	Candidates int
	// AllocRefused hooks the exit tracepoints of fork, vfork, clone,
	// clone3, mmap, mremap and brk for the requests the kernel refuses
	// with ENOMEM. They fire on every such call of the node, and every
	// task takes the kernel's slow syscall path meanwhile: see
	// docs/benchmarks.md for the cost.
	AllocRefused bool
}

// The candidate list's bounds: the BPF side keeps at most MaxCandidates.
const (
	DefaultCandidates = 10
	MaxCandidates     = len(oomtraceCandidatesRecord{}.C)
	CandidatesOff     = -1
)

// Tracer is a loaded and attached oomtrace program.
type Tracer struct {
	att    attacher
	reader *ringbuf.Reader
	waiter *fdwait.Waiter // waits for the ring buffer in the runtime's poller
	raw    ringbuf.Record // the record being read, reused
	lost   *ebpf.Map
	joiner *Joiner
}

// endCheck is how often a decision waiting for its end record checks that
// its thread is still inside oom_kill_process(); it is closed without its end
// only once the thread has left (the end record was lost), or after
// stuckDecision, when the running entry can only be a kretprobe's miss.
const (
	endCheck      = 200 * time.Millisecond
	stuckDecision = time.Minute
)

// Open loads the program and attaches the hooks. On error nothing stays attached.
func Open(cfg Config) (*Tracer, error) {
	if err := Preflight(); err != nil {
		return nil, err
	}
	// Kernels before 5.11 charge BPF memory to RLIMIT_MEMLOCK.
	if err := rlimit.RemoveMemlock(); err != nil {
		return nil, fmt.Errorf("raising the memlock limit: %w", err)
	}
	spec, err := loadOomtrace()
	if err != nil {
		return nil, err
	}
	if n := cfg.RingBufferSize; n != 0 {
		if n < uint32(os.Getpagesize()) || n&(n-1) != 0 {
			return nil, fmt.Errorf("ring buffer size %d: want a power of two of at least %d", n, os.Getpagesize())
		}
		spec.Maps["events"].MaxEntries = n
	}
	keep := cfg.Candidates
	switch {
	case keep == 0:
		keep = DefaultCandidates
	case keep > MaxCandidates:
		return nil, fmt.Errorf("candidates %d: at most %d", keep, MaxCandidates)
	case keep < 0:
		keep = 0
	}
	if err := spec.Variables["candidates_max"].Set(uint32(keep)); err != nil {
		return nil, fmt.Errorf("setting candidates_max: %w", err)
	}
	// Every map of the object, created once and shared by all the programs
	// (a map left out would be a private copy per program, seen by no other).
	mapsOnly := spec.Copy()
	mapsOnly.Programs = nil
	coll, err := ebpf.NewCollection(mapsOnly)
	if err != nil {
		if errors.Is(err, os.ErrPermission) {
			return nil, fmt.Errorf("creating maps: %w: %w", ErrPermission, err)
		}
		return nil, fmt.Errorf("creating maps: %w", err)
	}
	t := &Tracer{
		lost: coll.Maps["lost"],
		att: attacher{
			spec:  spec,
			maps:  coll.Maps,
			hooks: Hooks{Refused: map[string]string{}},
		},
	}
	closeMaps := func() {
		for _, m := range t.att.maps {
			m.Close()
		}
	}
	// The reader exists before any hook fires, so no record is missed.
	t.reader, err = ringbuf.NewReader(coll.Maps["events"])
	if err != nil {
		closeMaps()
		return nil, fmt.Errorf("opening the ring buffer: %w", err)
	}
	if t.waiter, err = fdwait.New(coll.Maps["events"].FD(), "ring buffer"); err != nil {
		t.reader.Close()
		closeMaps()
		return nil, err
	}
	err = t.attach(cfg)
	t.att.btf = nil // megabytes of kernel types, needed only to load
	if err != nil {
		t.att.close()
		t.waiter.Close()
		t.reader.Close()
		closeMaps()
		return nil, err
	}
	t.joiner = NewJoiner(t.att.hooks.Attach(), nil)
	t.joiner.Signals = t.att.hooks.Signal != ""
	return t, nil
}

func (t *Tracer) attach(cfg Config) error {
	t.att.attachSignal()
	if err := t.att.attachKill(cfg.KillHook); err != nil {
		return err
	}
	if k := t.att.hooks.Kill; k != "" && cfg.Candidates >= 0 {
		t.att.attachCandidates(k)
	}
	if cfg.AllocRefused {
		t.att.attachAlloc()
	}
	if err := t.att.attachMark(cfg.MarkHook); err != nil {
		// oom_kill_process() alone still sees every decision, but a forced
		// mark hook must attach or fail.
		if t.att.hooks.Kill == "" || (cfg.MarkHook != MarkHookAuto && cfg.MarkHook != "") {
			return err
		}
	}
	return nil
}

// OnNoKill passes each out_of_memory() call that chose nobody to f, on
// the goroutine running Run. Set it before Run.
func (t *Tracer) OnNoKill(f func(NoKill)) { t.joiner.OnNoKill = f }

// OnAllocRefused passes each memory request the kernel refused to f, on
// the goroutine running Run. Set it before Run.
func (t *Tracer) OnAllocRefused(f func(AllocRefused)) { t.joiner.OnAllocRefused = f }

// ProgramStat is what the kernel counted of one loaded BPF program: its
// runs and their total time. Both stay 0 unless BPF statistics are on
// (sysctl kernel.bpf_stats_enabled, or ebpf.EnableStats): they cost a
// clock read per run, so kernels keep them off by default.
type ProgramStat struct {
	Name    string // the program's name in the object
	Runs    uint64
	Runtime time.Duration
	// Missed counts the times the kernel skipped the program because
	// another BPF program ran on the CPU (5.12+): each a record lost.
	Missed uint64
}

// ProgramStats reads each loaded program's statistics, for benchmarks.
func (t *Tracer) ProgramStats() ([]ProgramStat, error) {
	stats := make([]ProgramStat, 0, len(t.att.progs))
	for i, p := range t.att.progs {
		st, err := p.Stats()
		if err != nil {
			return nil, fmt.Errorf("reading %s's statistics: %w", t.att.names[i], err)
		}
		stats = append(stats, ProgramStat{Name: t.att.names[i], Runs: st.RunCount, Runtime: st.Runtime, Missed: st.RecursionMisses})
	}
	return stats, nil
}

// Hooks says what is attached and what was refused.
func (t *Tracer) Hooks() Hooks { return t.att.hooks }

// Stats returns the join's counters. Call it from the goroutine running Run,
// or after Run returns.
func (t *Tracer) Stats() JoinStats { return t.joiner.Stats }

// Lost is the number of records the BPF side could not reserve in the ring buffer.
func (t *Tracer) Lost() (uint64, error) {
	var perCPU []uint64
	if err := t.lost.Lookup(uint32(0), &perCPU); err != nil {
		return 0, fmt.Errorf("reading the lost counter: %w", err)
	}
	var n uint64
	for _, v := range perCPU {
		n += v
	}
	return n, nil
}

// Run reads records and calls emit with each kill until ctx is done, then
// closes the decisions still open and returns nil. Bad records are passed to
// onError and skipped; the loop never stops on one.
//
// At the end nothing the kernel recorded is lost: the hooks are detached
// first, so no record can come after, then what the ring buffer still holds
// is read to its end.
func (t *Tracer) Run(ctx context.Context, emit func(Kill), onError func(error)) error {
	t.joiner.emit = emit
	stop := context.AfterFunc(ctx, func() {
		t.att.detach()
		t.waiter.Stop()
	})
	defer stop()

	// Reads never block: the waiter waits, in the runtime's poller.
	t.reader.SetDeadline(fdwait.Expired)
	// Consecutive failures of reading and of waiting. Not a record's
	// fault: the next try may fail the same way at once (a ring that holds
	// data it cannot read makes every wait return at once), so each one
	// backs off, 10 ms doubling to a second.
	readFailures, waitFailures := 0, 0
	for {
		switch err := t.drain(onError); {
		case errors.Is(err, ringbuf.ErrClosed):
			return nil
		case err != nil:
			onError(fmt.Errorf("reading the ring buffer: %w", err))
			readFailures++
		default:
			readFailures = 0
		}
		if n := max(readFailures, waitFailures); n > 0 {
			select {
			case <-ctx.Done():
			case <-time.After(min(10*time.Millisecond<<min(n, 7), time.Second)):
			}
		}
		// Wake up only while a decision waits for its end: no idle wake-ups.
		var deadline time.Time
		if t.joiner.Pending() {
			deadline = time.Now().Add(endCheck)
		}
		err := t.waiter.Wait(deadline, func() bool { return t.reader.AvailableBytes() > 0 })
		switch {
		case errors.Is(err, fdwait.ErrStopped):
			// The hooks are detached: this read is the last.
			if err := t.drain(onError); err != nil && !errors.Is(err, ringbuf.ErrClosed) {
				onError(fmt.Errorf("reading the ring buffer at the end: %w", err))
			}
			t.joiner.FlushAll()
			return nil
		case errors.Is(err, os.ErrDeadlineExceeded):
			now := BootNow()
			t.joiner.FlushLeft(now-uint64(endCheck), func(tid uint32, seq uint64) bool {
				return t.insideDecision(tid, seq, now)
			})
			waitFailures = 0
		case err != nil:
			onError(fmt.Errorf("waiting for the ring buffer: %w", err))
			waitFailures++
		default:
			waitFailures = 0
		}
	}
}

// drain reads every record the ring buffer holds and feeds it to the join.
// It returns nil once the ring is empty, ringbuf.ErrClosed once the reader
// is closed, or the error that stopped it reading. A bad record is passed to
// onError and skipped.
func (t *Tracer) drain(onError func(error)) error {
	// Asked first: the reader's own read would make an epoll_wait call
	// each time it finds the ring empty, two system calls per kill.
	for t.reader.AvailableBytes() > 0 {
		err := t.reader.ReadInto(&t.raw)
		switch {
		case errors.Is(err, os.ErrDeadlineExceeded):
			return nil // empty after all (what was there was discarded)
		case errors.Is(err, ringbuf.ErrClosed):
			t.joiner.FlushAll()
			return err
		case err != nil:
			return err
		}
		rec, err := DecodeRecord(t.raw.RawSample)
		if err != nil {
			onError(err)
			continue
		}
		if rec.Task.Partial {
			resolvePartial(&rec.Task)
		}
		t.joiner.Feed(rec)
	}
	return nil
}

// insideDecision reports whether thread tid is still inside the decision
// seq (the BPF side's running map), unless that has lasted so long that the
// entry must be a kretprobe's missed return: then it is dropped.
func (t *Tracer) insideDecision(tid uint32, seq uint64, now uint64) bool {
	running := t.att.maps["running"]
	var d oomtraceDecision
	if err := running.Lookup(tid, &d); err != nil || d.Seq != seq {
		return false
	}
	if now-t.joiner.beganAt(seq) < uint64(stuckDecision) {
		return true
	}
	_ = running.Delete(tid)
	return false
}

// Close detaches every hook and frees the program. Run must have returned.
func (t *Tracer) Close() error {
	t.att.close()
	t.waiter.Close()
	err := t.reader.Close()
	for _, m := range t.att.maps {
		m.Close()
	}
	if errors.Is(err, os.ErrClosed) {
		err = nil
	}
	return err
}

// resolvePartial fills what the kernel's record lacked of a victim known by
// its thread id, from /proc while the dying process is still there: its
// thread group, and its comm and uid unless the record gave them (the
// classic tracepoint's 2024 fields). When /proc no longer has it, the pid is
// the thread id: never 0.
func resolvePartial(task *Task) {
	task.Pid = task.Tid
	st, err := procfs.ReadStatus(int(task.Tid))
	if err != nil {
		return
	}
	if st.Tgid != 0 {
		task.Pid = st.Tgid
	}
	if task.Comm == "" { // not from the record
		task.Comm = EscapeComm([]byte(st.Name))
		task.UID = st.UID
	}
}
