package integration

// The candidates the kernel weighed: a cgroup of idle processes of known
// sizes and adjs, and a trigger that outgrows them all. With out_of_memory()
// and oom_badness() hooked, the list is the kernel's own scores; in
// mark_victim mode, the model's over /proc right after the kill.

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/oomtrace/oomtrace/enrich"
	"github.com/oomtrace/oomtrace/event"
	"github.com/oomtrace/oomtrace/explain"
	"github.com/oomtrace/oomtrace/internal/oomtest"
	"github.com/oomtrace/oomtrace/kernel/badness"
	"github.com/oomtrace/oomtrace/tracer"
	"golang.org/x/sys/unix"
)

// holders are idle processes of the cgroup, each a candidate the kernel
// must weigh and rank below the trigger.
var holders = []oomtest.Hog{
	{MB: 24, Comm: "cand-big", Adj: 0},
	{MB: 8, Comm: "cand-adj", Adj: 300},
	{MB: 16, Comm: "cand-neg", Adj: -500},
	{MB: 4, Comm: "cand-never", Adj: -1000},
}

func TestCandidates(t *testing.T) {
	r := startTracer(t)
	e := newEnricher(t)
	h := oomtest.MustHierarchy(t)
	cg := oomtest.NewCgroup(t, h, nil, "cands", 128*mib)
	held := map[uint32]oomtest.Hog{}
	lower := oomtest.CanLowerOOMScoreAdj()
	for _, hog := range holders {
		if hog.Adj < 0 && !lower {
			t.Logf("%s left out: a negative oom_score_adj needs CAP_SYS_RESOURCE, which this test lacks", hog.Comm)
			continue
		}
		hog.Cgroup, hog.Hold = cg, true
		p, err := hog.Start(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(p.Stop)
		held[uint32(p.Pid())] = hog
	}
	// The kernel counts each program's runs and their time while stats are
	// on: what the candidate hooks cost a decision, beside the kill hooks.
	stats, err := ebpf.EnableStats(uint32(unix.BPF_STATS_RUN_TIME))
	if err != nil {
		t.Fatalf("enabling BPF statistics: %v", err)
	}
	defer stats.Close()
	c := snapshot(t, cg)
	runHogs(t, oomtest.Hog{Cgroup: cg, MB: 512, Comm: "cand-trigger"})
	kills := r.waitKills(t, c.delta(t, 0), inCgroup(cg))
	c.checkMachine(t, r)
	if len(kills) == 0 {
		t.Fatal("no kill in the cgroup")
	}
	checkProgramCosts(t, r.tr, kills)
	hooked := r.tr.Hooks().Candidates != ""
	if r.tr.Hooks().Kill != "" && !hooked {
		t.Errorf("oom_kill_process hooked with %s, the candidate hooks refused: %s", r.tr.Hooks().Kill, r.tr.Hooks().Refused["candidates"])
	}
	for _, k := range kills {
		res := e.Enrich(context.Background(), k)
		cands := res.Candidates
		if cands == nil {
			t.Fatalf("kill of %d: no candidates (%v)", k.Victim.Pid, res.Errors)
		}
		t.Logf("kill of %s[%d]: %d weighed, %d unkillable, source %s %s, margin %v",
			k.Victim.Comm, k.Victim.Pid, cands.Total, cands.Unkillable, cands.Source, cands.ModelReason, fmtPtr(cands.Margin))
		for _, c := range cands.List {
			t.Logf("  %-12s pid %-6d adj %5d rss %6d score %d model %d", c.Comm, c.Pid, c.OOMScoreAdj, c.Pages.RSS(), c.Score, c.ModelScore)
		}
		checkCandidates(t, k, cands, held, hooked)
	}
}

func checkCandidates(t *testing.T, k tracer.Kill, c *enrich.Candidates, held map[uint32]oomtest.Hog, hooked bool) {
	t.Helper()
	switch {
	case !hooked:
		if c.Source != enrich.CandidatesModel || c.ModelReason != enrich.ModelNotHooked {
			t.Errorf("no candidate hooks, yet source %q (%q)", c.Source, c.ModelReason)
		}
	case c.Source == enrich.CandidatesModel && c.ModelReason == enrich.ModelScanUnseen:
		// The hooks ran and saw no oom_badness() call of the OOM killer:
		// this kernel's compiler inlined it (Debian's 5.10). Said so,
		// and the model stands in.
		t.Logf("this kernel inlines oom_badness() into the OOM killer: the model's list")
	case c.Source != enrich.CandidatesKernel || c.ModelReason != "":
		t.Errorf("candidate hooks attached, yet source %q (%q)", c.Source, c.ModelReason)
	}
	v := c.List[0]
	if !v.Victim || v.Pid != k.Victim.Pid {
		t.Errorf("first candidate %+v, want the victim %d", v, k.Victim.Pid)
	}
	switch {
	case k.KernelScore == nil:
	case c.Source == enrich.CandidatesKernel && v.Score != *k.KernelScore:
		t.Errorf("victim's candidate score %d, score.kernel %d", v.Score, *k.KernelScore)
	case c.Source == enrich.CandidatesModel:
		// The model's, from the counters at the kill; a kernel score read
		// from the stack at the mark is within the drift of those.
		tol := badness.DriftTolerance(k.Victim.Pages.RSS() + k.Victim.Pages.Swap + k.Victim.Pages.PgTables)
		if d := v.Score - *k.KernelScore; d < -tol || d > tol {
			t.Errorf("victim's model score %d, score.kernel %d (from %s)", v.Score, *k.KernelScore, k.ScopeFrom)
		}
	}
	// Every holder was weighed (the trigger too).
	unkillable := 0
	for _, hog := range held {
		if hog.Adj == badness.AdjMin {
			unkillable++
		}
	}
	if c.Total < 1+len(held) || c.Unkillable < unkillable {
		t.Errorf("%d weighed, %d unkillable; want at least %d and %d", c.Total, c.Unkillable, 1+len(held), unkillable)
	}
	seen := map[uint32]bool{}
	for i, cand := range c.List {
		seen[cand.Pid] = true
		if i > 0 && cand.Victim {
			t.Errorf("candidate %d is marked the victim too", i)
		}
		// The kernel's score, for the counters it read, is the model's.
		if cand.Score != cand.ModelScore {
			t.Errorf("%s[%d]: score %d, model %d (pages %+v adj %d)", cand.Comm, cand.Pid, cand.Score, cand.ModelScore, cand.Pages, cand.OOMScoreAdj)
		}
		if i > 1 && cand.Score > c.List[i-1].Score {
			t.Errorf("candidate %d (%d) ranks below a lower score (%d)", i, cand.Score, c.List[i-1].Score)
		}
		if i > 0 && !cand.Unkillable() && cand.Score > v.Score {
			t.Errorf("%s[%d] scored %d, above the victim's %d", cand.Comm, cand.Pid, cand.Score, v.Score)
		}
		if hog, ok := held[cand.Pid]; ok {
			if int(cand.OOMScoreAdj) != hog.Adj || cand.Comm != hog.Comm {
				t.Errorf("holder %d: %s adj %d, want %s adj %d", cand.Pid, cand.Comm, cand.OOMScoreAdj, hog.Comm, hog.Adj)
			}
			if hog.Adj == badness.AdjMin && !cand.Unkillable() {
				t.Errorf("holder %d at adj -1000 scored %d", cand.Pid, cand.Score)
			}
			// Its memory is in the counters: at least MB, a little more for
			// the program itself.
			if rss := cand.Pages.RSS() * uint64(os.Getpagesize()); rss < uint64(hog.MB)*mib {
				t.Errorf("holder %d: rss %d bytes, it holds %d MiB", cand.Pid, rss, hog.MB)
			}
		}
	}
	for pid, hog := range held {
		if !seen[pid] {
			t.Errorf("holder %s[%d] missing from the candidates", hog.Comm, pid)
		}
	}
	if len(c.List) > 1 && !c.List[1].Unkillable() {
		if c.Margin == nil || *c.Margin != v.Score-c.List[1].Score {
			t.Errorf("margin %v, want %d", fmtPtr(c.Margin), v.Score-c.List[1].Score)
		}
	}
}

// The daemon's oom_kill line for a cgroup with a holder: its candidate
// fields as docs/events.md describes them, logged with the console
// sentence and explain's breakdown (what the closing notes quote).
func TestDaemonCandidateFields(t *testing.T) {
	oomtest.RequireRoot(t)
	h := oomtest.MustHierarchy(t)
	cg := oomtest.NewCgroup(t, h, nil, "candline", 96*mib)
	out, started, stop := startDaemon(t)
	holder, err := oomtest.Hog{Cgroup: cg, MB: 16, Comm: "cand-cache", Adj: 200, Hold: true}.Start(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(holder.Stop)
	c := snapshot(t, cg)
	runHogs(t, oomtest.Hog{Cgroup: cg, MB: 512, Comm: "cand-web"})
	want := c.delta(t, 0)
	var kills []event.Kill
	var raw [][]byte
	collect := func() int {
		kills, raw = nil, nil
		n := 0
		out.lines(t, "oom_kill", func(b []byte) {
			var k event.Kill
			if err := json.Unmarshal(b, &k); err != nil {
				t.Fatal(err)
			}
			if k.Victim.Cgroup.ID == cg.ID {
				kills, raw = append(kills, k), append(raw, b)
				n += k.Kills
			}
		})
		return n
	}
	for deadline := time.Now().Add(30 * time.Second); uint64(collect()) < want && time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
	}
	stop()
	if n := collect(); uint64(n) != want {
		t.Fatalf("the daemon wrote %d kills for the cgroup, the kernel counted %d", n, want)
	}
	for i, k := range kills {
		t.Logf("line: %s", raw[i])
		t.Logf("console: %s", explain.Style{}.Sentence(k))
		for _, l := range (explain.Style{}).Why(k) {
			t.Logf("explain: %s", l)
		}
		src := fmtPtr64(k.CandidatesSource)
		switch {
		case started.Hooks.Candidates == "none" && src != "model":
			t.Errorf("candidate hooks none, candidates_source %v", src)
		case started.Hooks.Candidates != "none" && src != "kernel" && fmtPtr64(k.CandidatesModelReason) != enrich.ModelScanUnseen:
			t.Errorf("candidate hooks %s, candidates_source %v (%v)", started.Hooks.Candidates, src, fmtPtr64(k.CandidatesModelReason))
		}
		if len(k.Candidates) < 2 || !k.Candidates[0].Victim || k.Candidates[0].Pid != k.Victim.Pid {
			t.Fatalf("candidates %+v: want the victim first and the holder", k.Candidates)
		}
		if k.CandidatesTotal == nil || *k.CandidatesTotal < 2 {
			t.Errorf("candidates_total %v", fmtPtr64(k.CandidatesTotal))
		}
		r := k.Candidates[1]
		if r.Pid != uint32(holder.Pid()) || r.Comm != "cand-cache" || r.OOMScoreAdj != 200 || r.Score == nil || r.ModelScore == nil || *r.Score != *r.ModelScore {
			t.Errorf("runner-up %+v, want the holder scored as the model scores it", r)
		}
		if k.Score.Margin == nil || k.Candidates[0].Score == nil || *k.Score.Margin != *k.Candidates[0].Score-*r.Score {
			t.Errorf("score.margin %v, candidates %v and %v", fmtPtr64(k.Score.Margin), fmtPtr64(k.Candidates[0].Score), fmtPtr64(r.Score))
		}
		checkKernelStack(t, k.Trigger.KernelStack, true)
		checkMemcgStat(t, k, cg, h.V2)
		checkTop(t, k, holder.Pid())
		if s := (explain.Style{}).Sentence(k); !strings.Contains(s, "runner-up cand-cache[") {
			t.Errorf("console line without the runner-up: %s", s)
		}
	}
}

// checkProgramCosts logs each BPF program's runs and time per decision
// (in the VM, under emulation: compare them with each other, not with
// real hardware), and checks the counts: oom_badness()'s exit hook ran
// at least once per candidate the kernel scored, out_of_memory()'s entry
// at least once per decision.
func checkProgramCosts(t *testing.T, tr *tracer.Tracer, kills []tracer.Kill) {
	t.Helper()
	stats, err := tr.ProgramStats()
	if err != nil {
		t.Fatal(err)
	}
	scored := 0
	for _, k := range kills {
		if k.Candidates != nil {
			scored += k.Candidates.Scored
		}
	}
	var kill, cands time.Duration
	for _, s := range stats {
		t.Logf("BPF %-28s runs %5d  %8.1f µs each  %8.1f µs per decision", s.Name, s.Runs,
			float64(s.Runtime.Nanoseconds())/1e3/float64(max(s.Runs, 1)), float64(s.Runtime.Nanoseconds())/1e3/float64(len(kills)))
		switch {
		case strings.Contains(s.Name, "oom_badness"), strings.Contains(s.Name, "out_of_memory"):
			cands += s.Runtime
		case strings.Contains(s.Name, "oom_kill_process"):
			kill += s.Runtime
		}
		if s.Missed > 0 {
			t.Errorf("%s: the kernel skipped %d runs (another BPF program on the CPU)", s.Name, s.Missed)
		}
		if strings.HasSuffix(s.Name, "ret_oom_badness") || s.Name == "fexit_oom_badness" {
			if s.Runs < uint64(scored) {
				t.Errorf("%s ran %d times, the decisions scored %d candidates", s.Name, s.Runs, scored)
			}
		}
		if (s.Name == "fentry_out_of_memory" || s.Name == "kprobe_out_of_memory") && s.Runs < uint64(len(kills)) {
			t.Errorf("%s ran %d times for %d decisions", s.Name, s.Runs, len(kills))
		}
	}
	t.Logf("per decision: candidate hooks %.1f µs, oom_kill_process hooks %.1f µs (%d decisions, %d candidates scored)",
		float64(cands.Nanoseconds())/1e3/float64(len(kills)), float64(kill.Nanoseconds())/1e3/float64(len(kills)), len(kills), scored)
}

// With room for two, the BPF side keeps the two best of the five tasks
// the kernel scores, whatever order the scan meets them in: the victim
// and the largest holder. Where the model stands in, it cuts the same way.
func TestCandidatesKeepsTheBest(t *testing.T) {
	r := startTracerWith(t, tracer.Config{Candidates: 2})
	e := newEnricher(t)
	e.KeepCandidates(2)
	cg := oomtest.NewCgroup(t, oomtest.MustHierarchy(t), nil, "candbest", 128*mib)
	var largest uint32
	for _, mb := range []int{8, 28, 4, 16} {
		p, err := oomtest.Hog{Cgroup: cg, MB: mb, Comm: fmt.Sprintf("hold-%d", mb), Hold: true}.Start(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(p.Stop)
		if mb == 28 {
			largest = uint32(p.Pid())
		}
	}
	c := snapshot(t, cg)
	runHogs(t, oomtest.Hog{Cgroup: cg, MB: 512, Comm: "best-trigger"})
	kills := r.waitKills(t, c.delta(t, 0), inCgroup(cg))
	c.checkMachine(t, r)
	for _, k := range kills {
		if kc := k.Candidates; kc != nil && kc.Scored > 0 {
			if kc.Scored < 5 || len(kc.List) != 2 {
				t.Errorf("kernel list: %d kept of %d scored, want 2 of at least 5", len(kc.List), kc.Scored)
			}
		}
		res := e.Enrich(context.Background(), k)
		if res.Candidates == nil {
			t.Fatalf("no candidates: %v", res.Errors)
		}
		l := res.Candidates.List
		t.Logf("kept (%s): %+v", res.Candidates.Source, l)
		if len(l) != 2 || l[0].Pid != k.Victim.Pid || l[1].Pid != largest {
			t.Errorf("kept %+v, want the victim %d and the largest holder %d", l, k.Victim.Pid, largest)
		}
		if res.Candidates.Total < 5 {
			t.Errorf("%d weighed, want at least 5", res.Candidates.Total)
		}
	}
}

// checkMemcgStat checks the OOM memcg's stat and events, read just after
// the kill: its memory is mostly the hogs' anonymous memory, and its
// oom_kill counter has counted this kill (the kernel's own count, which
// the test compared the lines with).
func checkMemcgStat(t *testing.T, k event.Kill, cg *oomtest.Cgroup, v2 bool) {
	t.Helper()
	s, e := k.OOM.Memcg.Stat, k.OOM.Memcg.Events
	if s == nil || e == nil {
		t.Fatalf("oom.memcg stat %v events %v (errors %v)", s, e, k.EnrichErrors)
	}
	if s.Anon == nil || *s.Anon <= 0 || *s.Anon > cg.LimitBytes || s.File == nil || s.Shmem == nil || s.FileDirty == nil {
		t.Errorf("oom.memcg.stat anon %v file %v shmem %v dirty %v: want the anon a hog left below the limit %d", fmtPtr64(s.Anon),
			fmtPtr64(s.File), fmtPtr64(s.Shmem), fmtPtr64(s.FileDirty), cg.LimitBytes)
	}
	if e.OOMKill == nil || *e.OOMKill < 1 {
		t.Errorf("oom.memcg.events.oom_kill %v: the kernel counted a kill", fmtPtr64(e.OOMKill))
	}
	// PSI: the VM boots with psi=1 (Debian's kernels build it in, off);
	// elsewhere it is either read or said to be off.
	want := "node" // cgroup v1's cgroups have no pressure files
	if v2 {
		want = "cgroup"
	}
	switch p := k.OOM.Memcg.PSI; {
	case p != nil:
		if p.Scope != want || p.Some.TotalUs < p.Full.TotalUs {
			t.Errorf("oom.memcg.psi %+v: want scope %s, some stalls at least as long as full", p, want)
		}
	case inVM():
		t.Errorf("oom.memcg.psi null in the VM, booted with psi=1: %s", k.EnrichErrors["psi"])
	case k.EnrichErrors["psi"] == "":
		t.Error("oom.memcg.psi null without enrich_errors.psi")
	}
	// v2 counts each charge that hit memory.max. v1's failcnt is not a
	// count to hold the kernel to: with a memsw limit as the test sets,
	// the charge fails on memory+swap first, whose failcnt 6.15+ no
	// longer keeps (measured on 6.18: both 0 after a kill), so only its
	// presence is checked.
	if v2 && (e.Max == nil || *e.Max < 1) || !v2 && (e.Failcnt == nil || e.Max != nil) {
		t.Errorf("oom.memcg.events max %v failcnt %v memsw_failcnt %v: want v2's max counting the charges that hit the limit, v1's failcnt",
			fmtPtr64(e.Max), fmtPtr64(e.Failcnt), fmtPtr64(e.MemswFailcnt))
	}
}

// checkTop checks the OOM memcg's largest processes: the victim first
// (512 MB asked of a 96 MiB cgroup: the largest, from its counters at the
// kill) and the holder, its 16 MB in, in order, at most five.
func checkTop(t *testing.T, k event.Kill, holder int) {
	t.Helper()
	top := k.OOM.Memcg.Top
	if len(top) < 2 || len(top) > 5 {
		t.Fatalf("oom.memcg.top %+v (errors %v): want the victim and the holder, at most five", top, k.EnrichErrors)
	}
	v := k.Victim.Pages
	if top[0].Pid != k.Victim.Pid || top[0].Comm != k.Victim.Comm || top[0].RSSBytes != (v.Anon+v.File+v.Shmem)*uint64(os.Getpagesize()) {
		t.Errorf("oom.memcg.top[0] %+v: want the victim %d with its pages at the kill %+v", top[0], k.Victim.Pid, v)
	}
	i := slices.IndexFunc(top, func(p event.TopProcess) bool { return p.Pid == uint32(holder) })
	if i < 0 || top[i].Comm != "cand-cache" || top[i].RSSBytes < 15*mib || top[i].RSSBytes > 64*mib {
		t.Errorf("oom.memcg.top %+v: want the holder %d with its 16 MiB", top, holder)
	}
	for j := 1; j < len(top); j++ {
		if top[j].RSSBytes > top[j-1].RSSBytes {
			t.Errorf("oom.memcg.top not largest first: %+v", top)
		}
	}
}
