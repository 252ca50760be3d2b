package integration

// The tracer on its own: real kills, seen through the real BPF program,
// counted against the kernel's counters and checked against its log.

import (
	"context"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/oomtrace/oomtrace/enrich"
	"github.com/oomtrace/oomtrace/internal/critest"
	"github.com/oomtrace/oomtrace/internal/oomtest"
	"github.com/oomtrace/oomtrace/kernel/badness"
	"github.com/oomtrace/oomtrace/kernel/kallsyms"
	"github.com/oomtrace/oomtrace/tracer"
)

func TestMain(m *testing.M) {
	oomtest.MaybeRunHog()
	critest.Main(m) // runs the tests, then stops a containerd they started
}

const mib = 1 << 20

// running is a tracer started for one test, collecting every kill it emits.
type running struct {
	tr     *tracer.Tracer
	cancel context.CancelFunc
	done   chan struct{}

	mu    sync.Mutex
	kills []tracer.Kill
	errs  []error
}

// startTracer opens the tracer in the attach mode the environment forces
// (OOMTRACE_TEST_KILL_HOOK, OOMTRACE_TEST_MARK_HOOK; vmtest sets them) and
// fails the test if a forced mode did not attach.
func startTracer(t *testing.T) *running { return startTracerWith(t, tracer.Config{}) }

// startTracerWith is startTracer with cfg's other settings.
func startTracerWith(t *testing.T, cfg tracer.Config) *running {
	t.Helper()
	oomtest.RequireRoot(t)
	cfg.KillHook = tracer.KillHook(os.Getenv("OOMTRACE_TEST_KILL_HOOK"))
	cfg.MarkHook = tracer.MarkHook(os.Getenv("OOMTRACE_TEST_MARK_HOOK"))
	tr, err := tracer.Open(cfg)
	if err != nil {
		t.Fatalf("opening the tracer: %v", err)
	}
	h := tr.Hooks()
	t.Logf("hooks: kill=%q mark=%q refused=%v", h.Kill, h.Mark, h.Refused)
	switch cfg.KillHook {
	case tracer.KillHookFentry, tracer.KillHookKprobe:
		if h.Kill != string(cfg.KillHook) {
			t.Fatalf("kill hook %q forced, got %q", cfg.KillHook, h.Kill)
		}
	case tracer.KillHookNone:
		if h.Kill != "" {
			t.Fatalf("kill hook none forced, got %q", h.Kill)
		}
	}
	if cfg.MarkHook != "" && cfg.MarkHook != tracer.MarkHookAuto && h.Mark != string(cfg.MarkHook) {
		t.Fatalf("mark hook %q forced, got %q", cfg.MarkHook, h.Mark)
	}
	t.Logf("mark_victim layout %q, signal_generate hook %q", h.MarkLayout, h.Signal)
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{tr: tr, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(r.done)
		err := tr.Run(ctx, func(k tracer.Kill) {
			r.mu.Lock()
			r.kills = append(r.kills, k)
			r.mu.Unlock()
		}, func(err error) {
			r.mu.Lock()
			r.errs = append(r.errs, err)
			r.mu.Unlock()
		})
		if err != nil {
			t.Errorf("tracer run: %v", err)
		}
	}()
	t.Cleanup(func() { r.stop(t) })
	return r
}

func (r *running) stop(t *testing.T) {
	r.cancel()
	<-r.done
	if err := r.tr.Close(); err != nil {
		t.Errorf("closing the tracer: %v", err)
	}
	for _, err := range r.errs {
		t.Errorf("record error: %v", err)
	}
	if lost, err := r.tr.Lost(); err == nil && lost > 0 {
		t.Errorf("%d records lost in the ring buffer", lost)
	}
}

// waitKills waits until the kills matching keep add up to want (victims plus
// group members), then a little longer so that a duplicate would show.
func (r *running) waitKills(t *testing.T, want uint64, keep func(tracer.Kill) bool) []tracer.Kill {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		got, n := r.matching(keep)
		if n >= want || time.Now().After(deadline) {
			time.Sleep(500 * time.Millisecond)
			got, n = r.matching(keep)
			if n != want {
				t.Errorf("tracer saw %d kills, the kernel counted %d", n, want)
				r.logAll(t)
			}
			return got
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// logAll lists every kill the tracer emitted, to explain a miscount.
func (r *running) logAll(t *testing.T) {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, k := range r.kills {
		t.Logf("  kill: attach %s victim %+v trigger %+v group %d", k.Attach, k.Victim, k.Trigger, len(k.Group))
	}
}

func (r *running) matching(keep func(tracer.Kill) bool) ([]tracer.Kill, uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var got []tracer.Kill
	var n uint64
	for _, k := range r.kills {
		if keep(k) {
			got = append(got, k)
			n += uint64(k.Kills())
		}
	}
	return got, n
}

func (r *running) total() uint64 {
	_, n := r.matching(func(tracer.Kill) bool { return true })
	return n
}

// inCgroup keeps the kills whose victim was charged to cg.
func inCgroup(cg *oomtest.Cgroup) func(tracer.Kill) bool {
	return func(k tracer.Kill) bool { return k.Victim.CgroupID == cg.ID }
}

// counters snapshots the kernel's counts: the cgroups' and the machine's.
type counters struct {
	cgroups []*oomtest.Cgroup
	before  []uint64
	vmstat  uint64
}

func snapshot(t *testing.T, cgs ...*oomtest.Cgroup) counters {
	t.Helper()
	c := counters{cgroups: cgs}
	for _, cg := range cgs {
		n, err := cg.OOMKills()
		if err != nil {
			t.Fatal(err)
		}
		c.before = append(c.before, n)
	}
	var err error
	if c.vmstat, err = oomtest.VMStatOOMKills(); err != nil {
		t.Fatal(err)
	}
	return c
}

// delta is the kernel's count of kills since the snapshot in cgroup i.
func (c counters) delta(t *testing.T, i int) uint64 {
	t.Helper()
	n, err := c.cgroups[i].OOMKills()
	if err != nil {
		t.Fatal(err)
	}
	return n - c.before[i]
}

// checkMachine compares every kill the tracer saw with /proc/vmstat.
func (c counters) checkMachine(t *testing.T, r *running) {
	t.Helper()
	now, err := oomtest.VMStatOOMKills()
	if err != nil {
		t.Fatal(err)
	}
	if got, want := r.total(), now-c.vmstat; got != want {
		t.Errorf("tracer saw %d kills in all, /proc/vmstat oom_kill went up by %d", got, want)
	}
}

func runHogs(t *testing.T, hogs ...oomtest.Hog) []*oomtest.Proc {
	t.Helper()
	var procs []*oomtest.Proc
	for _, h := range hogs {
		p, err := h.Start(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		procs = append(procs, p)
	}
	for _, p := range procs {
		killed, err := p.Wait()
		if err != nil {
			t.Fatalf("hog %d: %v", p.Pid(), err)
		}
		if !killed {
			t.Fatalf("hog %d allocated everything and was not OOM-killed", p.Pid())
		}
	}
	return procs
}

func TestMemcgKill(t *testing.T) {
	r := startTracer(t)
	cg := oomtest.NewCgroup(t, oomtest.MustHierarchy(t), nil, "memcg", 64*mib)
	c := snapshot(t, cg)

	procs := runHogs(t, oomtest.Hog{Cgroup: cg, MB: 256, Comm: "oomhog-memcg"})

	want := c.delta(t, 0)
	if want != 1 {
		t.Fatalf("kernel counted %d kills in the cgroup, want 1", want)
	}
	kills := r.waitKills(t, want, inCgroup(cg))
	c.checkMachine(t, r)
	if len(kills) != 1 {
		t.Fatalf("got %d events", len(kills))
	}
	k := kills[0]
	checkVictim(t, k, procs[0], "oomhog-memcg", cg)
	checkScope(t, k, r.tr.Hooks(), cg)
	checkAgainstKernelLog(t, k)
}

// checkAgainstKernelLog compares the event with the kernel's own "Killed
// process" line, printed a moment after the tracer read the same counters.
func checkAgainstKernelLog(t *testing.T, k tracer.Kill) {
	t.Helper()
	reports, err := oomtest.KernelKillReports()
	if err != nil {
		t.Fatalf("reading the kernel log: %v", err)
	}
	rep, ok := reports[int(k.Victim.Pid)]
	if !ok {
		t.Fatalf("no \"Killed process %d\" line in the kernel log", k.Victim.Pid)
	}
	kb := uint64(os.Getpagesize()) / 1024
	v := k.Victim
	// The kernel prints its counters a moment after the tracer read them,
	// after SIGKILL was sent; before 6.2 each thread also caches up to 64
	// counter updates (SPLIT_RSS_COUNTING, TASK_RSS_EVENTS_THRESH) that can
	// land in between: up to 64 pages per thread per counter, 2 MiB for
	// about 8 threads of the hog's Go runtime (seen: 80 kB, and once 1080 kB
	// of shmem, on 6.1).
	// Allow that, far below any real mistake (a unit error is 4x, a wrong
	// counter is the whole value).
	near := func(name string, pages, repKB uint64) {
		if d := int64(pages*kb) - int64(repKB); d < -2048 || d > 2048 {
			t.Errorf("%s: event %d kB, kernel log %d kB", name, pages*kb, repKB)
		}
	}
	near("anon", v.Pages.Anon, rep.AnonKB)
	near("file", v.Pages.File, rep.FileKB)
	near("shmem", v.Pages.Shmem, rep.ShmemKB)
	near("pgtables", v.Pages.PgTables, rep.PgtablesKB)
	if rep.UID != v.UID || rep.OOMScoreAdj != int(v.OOMScoreAdj) {
		t.Errorf("uid/adj: event %d/%d, kernel log %d/%d", v.UID, v.OOMScoreAdj, rep.UID, rep.OOMScoreAdj)
	}
}

// checkVictim checks who was killed and that its counters fit its real size.
func checkVictim(t *testing.T, k tracer.Kill, p *oomtest.Proc, comm string, cg *oomtest.Cgroup) {
	t.Helper()
	v := k.Victim
	if int(v.Pid) != p.Pid() {
		t.Errorf("victim pid %d, hog pid %d", v.Pid, p.Pid())
	}
	if v.Comm != comm {
		t.Errorf("victim comm %q, want %q", v.Comm, comm)
	}
	if v.UID != uint32(os.Getuid()) {
		t.Errorf("victim uid %d, want %d", v.UID, os.Getuid())
	}
	if cg != nil {
		if v.CgroupID != cg.ID {
			t.Errorf("victim cgroup id %d, scratch cgroup inode %d", v.CgroupID, cg.ID)
		}
		limitPages := uint64(cg.LimitBytes) / uint64(os.Getpagesize())
		// The hog touched far more than the limit: the killer found it near
		// the limit. It holds little more: what its runtime allocated before
		// it moved into the cgroup is charged elsewhere (8 MiB is ample).
		slack := uint64(8*mib) / uint64(os.Getpagesize())
		if v.Pages.Anon < limitPages/2 || v.Pages.Anon > limitPages+slack {
			t.Errorf("victim anon pages %d, want between %d and %d", v.Pages.Anon, limitPages/2, limitPages+slack)
		}
	}
	if v.Pages.PgTables == 0 {
		t.Errorf("victim page tables 0 pages: a process that touched %d anon pages has page tables", v.Pages.Anon)
	}
	if k.Time.IsZero() || time.Since(k.Time) > time.Minute || time.Until(k.Time) > time.Second {
		t.Errorf("event time %v is not about now", k.Time)
	}
	s, err := symbols()
	if err != nil {
		t.Errorf("indexing /proc/kallsyms: %v", err)
		return
	}
	names, err := enrich.NameStack(s, k.TriggerStack)
	if err != nil {
		t.Errorf("trigger's kernel stack: %v", err)
		return
	}
	checkKernelStack(t, names, cg != nil)
}

// symbols names the tests' stacks as the daemon does once it is ready:
// through its index of /proc/kallsyms, built once, so that the VM runs
// hold the index to every kernel of the matrix.
var symbols = sync.OnceValues(func() (*kallsyms.Symbolizer, error) {
	x, err := kallsyms.BuildIndex("", "", "")
	if err != nil {
		return nil, err
	}
	s := &kallsyms.Symbolizer{}
	s.UseIndex(x)
	return s, nil
})

// checkKernelStack checks a kill's trigger stack holds the OOM path, from
// the OOM killer down (the hooks' own frames left out): out_of_memory(),
// reached through mem_cgroup_out_of_memory() for a memcg's OOM.
func checkKernelStack(t *testing.T, names []string, memcg bool) {
	t.Helper()
	want := []string{"out_of_memory"}
	// The kprobe fallback's exit hook of out_of_memory() (a kretprobe)
	// puts its trampoline in place of the caller's return address, and
	// before 5.13 the unwinder stops there (seen on 5.10): the stack then
	// ends at out_of_memory(), with the trampoline last.
	if n := len(names); n > 0 && strings.HasSuffix(names[n-1], "kretprobe_trampoline") {
		t.Logf("stack ends at the kretprobe trampoline: %q", names)
		memcg = false
	}
	if memcg {
		want = append(want, "mem_cgroup_out_of_memory")
	}
	for _, w := range want {
		if !slices.Contains(names, w) {
			t.Errorf("trigger's kernel stack %q lacks %s", names, w)
		}
	}
	if len(names) > 0 && (strings.HasPrefix(names[0], "bpf_") || strings.HasPrefix(names[0], "0x")) {
		t.Errorf("trigger's kernel stack %q starts in the tracer's own frames", names)
	}
	if slices.ContainsFunc(names, func(n string) bool { return strings.HasPrefix(n, "bpf_trampoline_") }) || len(names) > 1 && names[0] == names[1] {
		t.Errorf("trigger's kernel stack %q holds a hook's trampoline or a repeated top frame", names)
	}
	// The tests' OOM paths run through the kernel's own text, all of it
	// named: an unnamed frame is one the index or the trimming missed.
	if slices.ContainsFunc(names, func(n string) bool { return strings.HasPrefix(n, "0x") }) {
		t.Errorf("trigger's kernel stack %q holds an unnamed frame", names)
	}
}

// checkScope checks the decision's fields where oom_kill_process() is hooked,
// and that they are absent where it is not.
func checkScope(t *testing.T, k tracer.Kill, h tracer.Hooks, cg *oomtest.Cgroup) {
	t.Helper()
	if k.Attach != h.Attach() {
		t.Errorf("event attach %q, tracer attached %q", k.Attach, h.Attach())
	}
	switch {
	case h.Kill != "":
		if k.ScopeFrom != tracer.ScopeFromHook {
			t.Errorf("hooked event's scope from %q", k.ScopeFrom)
		}
	case h.Signal != "":
		// The decision read from the deciding thread's stack: the same
		// checks as the hooked modes' must hold.
		if k.ScopeFrom != tracer.ScopeFromStack {
			t.Errorf("mark_victim-only event's scope from %q, want the stack", k.ScopeFrom)
		}
	default:
		if k.Scope != nil || k.KernelScore != nil {
			t.Errorf("mark_victim-only event without the signal hook has scope %+v score %v", k.Scope, k.KernelScore)
		}
		return
	}
	if k.Scope == nil || k.KernelScore == nil {
		t.Fatalf("event without scope or score (from %q)", k.ScopeFrom)
	}
	s := *k.Scope
	if cg != nil {
		if s.Constraint != tracer.ConstraintMemcg {
			t.Errorf("constraint %v, want memcg", s.Constraint)
		}
		if s.MemcgID != cg.ID {
			t.Errorf("oom memcg id %d, scratch cgroup %d", s.MemcgID, cg.ID)
		}
		if want := uint64(cg.LimitBytes) / uint64(os.Getpagesize()); s.TotalPages != want {
			t.Errorf("totalpages %d, want the limit: %d pages", s.TotalPages, want)
		}
	} else {
		if s.Constraint != tracer.ConstraintNone || s.MemcgID != 0 {
			t.Errorf("global OOM with constraint %v memcg %d", s.Constraint, s.MemcgID)
		}
	}
	// oom_badness(): rss + swap + page tables + adj * totalpages / 1000.
	v := k.Victim
	want := int64(v.Pages.RSS()+v.Pages.Swap+v.Pages.PgTables) + int64(v.OOMScoreAdj)*int64(s.TotalPages/1000)
	// Read at the mark (the stack), the counters may have moved by a few
	// pages since the kernel scored the victim (badness.DriftTolerance).
	tolerance := int64(0)
	if k.ScopeFrom == tracer.ScopeFromStack {
		tolerance = badness.DriftTolerance(v.Pages.RSS() + v.Pages.Swap + v.Pages.PgTables)
	}
	if d := *k.KernelScore - want; d < -tolerance || d > tolerance {
		t.Errorf("kernel score %d, recomputed from captured counters %d (%+v adj %d, tolerance %d)", *k.KernelScore, want, v.Pages, v.OOMScoreAdj, tolerance)
	}
}

// A multi-threaded victim dies once, however many of its threads the kernel marks.
func TestMultiThreadedVictim(t *testing.T) {
	r := startTracer(t)
	cg := oomtest.NewCgroup(t, oomtest.MustHierarchy(t), nil, "threads", 64*mib)
	c := snapshot(t, cg)

	const rounds = 3
	var procs []*oomtest.Proc
	for i := 0; i < rounds; i++ {
		procs = append(procs, runHogs(t, oomtest.Hog{Cgroup: cg, MB: 256, Threads: 8, Comm: "oomhog-threads"})...)
	}
	want := c.delta(t, 0)
	if want != rounds {
		t.Errorf("kernel counted %d kills for %d killed hogs", want, rounds)
	}
	kills := r.waitKills(t, want, inCgroup(cg))
	c.checkMachine(t, r)
	for i, k := range kills {
		if i < len(procs) {
			checkVictim(t, k, procs[i], "oomhog-threads", cg)
		}
	}
	t.Logf("join stats: %+v", r.tr.Stats())
}

// Two OOMs in two cgroups at once: each kill lands in its own cgroup, once.
func TestInterleavedCgroups(t *testing.T) {
	r := startTracer(t)
	h := oomtest.MustHierarchy(t)
	a := oomtest.NewCgroup(t, h, nil, "left", 48*mib)
	b := oomtest.NewCgroup(t, h, nil, "right", 64*mib)
	c := snapshot(t, a, b)

	const each = 4
	var hogs []oomtest.Hog
	for i := 0; i < each; i++ {
		hogs = append(hogs,
			oomtest.Hog{Cgroup: a, MB: 256, Threads: 2, Comm: "oomhog-left"},
			oomtest.Hog{Cgroup: b, MB: 256, Threads: 2, Comm: "oomhog-right"})
	}
	runHogs(t, hogs...)
	for i, cg := range []*oomtest.Cgroup{a, b} {
		want := c.delta(t, i)
		if want < 1 {
			t.Errorf("cgroup %s: no kill counted", cg.Path)
		}
		for _, k := range r.waitKills(t, want, inCgroup(cg)) {
			if k.Scope != nil && k.Scope.MemcgID != cg.ID {
				t.Errorf("kill in %s blames memcg %d", cg.Path, k.Scope.MemcgID)
			}
		}
	}
	c.checkMachine(t, r)
}

// A comm of arbitrary bytes comes out escaped, whole.
func TestHostileComm(t *testing.T) {
	r := startTracer(t)
	cg := oomtest.NewCgroup(t, oomtest.MustHierarchy(t), nil, "comm", 64*mib)
	c := snapshot(t, cg)
	comm := "\xff\xfe\"\\\x01{é}\x7f"
	runHogs(t, oomtest.Hog{Cgroup: cg, MB: 256, Comm: comm})
	kills := r.waitKills(t, c.delta(t, 0), inCgroup(cg))
	c.checkMachine(t, r)
	if want := tracer.EscapeComm([]byte(comm)); len(kills) != 1 || kills[0].Victim.Comm != want {
		t.Fatalf("got %+v, want one kill with comm %q", kills, want)
	}
}

// A global OOM: constraint none, no memcg. Only inside the VM, where the
// victim is known (oom_score_adj 1000) and nothing else can be hurt.
func TestGlobalOOM(t *testing.T) {
	oomtest.RequireVM(t)
	r := startTracer(t)
	protectSelf(t)
	bystanders(t)
	c := snapshot(t)
	procs := runHogs(t, oomtest.Hog{MB: 4096, Comm: "oomhog-global", Adj: 1000})
	isHog := func(k tracer.Kill) bool { return int(k.Victim.Pid) == procs[0].Pid() }
	kills := r.waitKills(t, 1, isHog)
	c.checkMachine(t, r) // bystanders killed too are counted on both sides
	if len(kills) != 1 {
		t.Fatalf("%d events for the hog", len(kills))
	}
	checkVictim(t, kills[0], procs[0], "oomhog-global", nil)
	checkScope(t, kills[0], r.tr.Hooks(), nil)
	if k := kills[0]; k.Victim.OOMScoreAdj != 1000 {
		t.Errorf("victim oom_score_adj %d, want 1000", k.Victim.OOMScoreAdj)
	}
	res := newEnricher(t).Enrich(context.Background(), kills[0])
	checkScore(t, kills[0], res)
	// Without oom_kill_process() the constraint is unknown, so the event
	// cannot tell a global OOM and carries no node context.
	if kills[0].Scope != nil && (res.Node == nil || res.Node.MemTotalBytes == 0) {
		t.Errorf("global OOM without node context: %+v", res.Node)
	}
}

// Stopping right after the kills loses none of them: the hooks are detached
// first, then the ring buffer is read to its end.
func TestStopLosesNothing(t *testing.T) {
	r := startTracer(t)
	cg := oomtest.NewCgroup(t, oomtest.MustHierarchy(t), nil, "stop", 64*mib)
	c := snapshot(t, cg)
	runHogs(t, oomtest.Hog{Cgroup: cg, MB: 256, Comm: "oomhog-stop"}, oomtest.Hog{Cgroup: cg, MB: 256, Threads: 4, Comm: "oomhog-stop"})
	want := c.delta(t, 0)
	r.cancel() // at once: no waiting for the kills to come out
	<-r.done
	if _, got := r.matching(inCgroup(cg)); got != want {
		t.Errorf("after stopping, the tracer had reported %d kills, the kernel counted %d", got, want)
	}
}
