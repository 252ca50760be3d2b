package rank

import (
	"encoding/json"
	"path/filepath"
	"slices"
	"testing"

	"github.com/oomtrace/oomtrace/kernel/badness"
)

// 64 MiB is 16384 pages: an OOM there adds adj × 16 points.
const limit64 = 64 * mib

func TestRankScoresMatchModel(t *testing.T) {
	f := newFixture(t, false, 16*1024, 0)
	f.cgroup("/app", limit64, 48*mib, 8*mib, 10, 11)
	f.proc(fakeProc{pid: 10, comm: "big", anon: 8000, file: 300, shmem: 20, swap: 0, pte: 30, oomScore: 668})
	f.proc(fakeProc{pid: 11, comm: "small", anon: 1000, pte: 5, adj: 100, oomScore: 673})
	s := f.snapshot(0)
	c := row(t, s, "/app")
	machine := uint64(16*1024*mib) / pageSize
	if c.TotalPages != uint64(limit64)/pageSize || s.MachinePages != machine {
		t.Fatalf("totalpages %d machine %d, want the limit %d and RAM %d", c.TotalPages, s.MachinePages, limit64/pageSize, machine)
	}
	for _, cand := range c.Candidates {
		in := badness.Inputs{RSS: cand.Pages.RSS(), Swap: cand.Pages.Swap, PgTables: cand.Pages.PgTables, OOMScoreAdj: cand.OOMScoreAdj}
		in.TotalPages = c.TotalPages
		want := badness.Score(in)
		in.TotalPages = machine
		if cand.Score != want || cand.ModelOOMScore != badness.ProcOOMScore(badness.Score(in), machine) {
			t.Errorf("%+v: score %d model oom_score %d, want %d and %d", cand, cand.Score, cand.ModelOOMScore, want, badness.ProcOOMScore(badness.Score(in), machine))
		}
	}
	// big: 8000+300+20+30; small: 1000+5 + 100×16.
	if got := []int64{c.Candidates[0].Score, c.Candidates[1].Score}; !slices.Equal(got, []int64{8350, 2605}) {
		t.Errorf("scores %v, want [8350 2605]", got)
	}
	if *c.Candidates[1].OOMScore != 673 || c.Candidates[1].Cgroup != "/app" || c.Candidates[1].Comm != "small" {
		t.Errorf("candidate %+v: want the kernel's oom_score 673, cgroup /app, comm small", c.Candidates[1])
	}
	if *c.Usage != 48*mib || *c.WorkingSet != 40*mib || *c.Ratio != 40.0/64 || c.AtRisk {
		t.Errorf("usage %d working set %d ratio %v at risk %v, want 48 MiB, 40 MiB, 0.625, false", *c.Usage, *c.WorkingSet, *c.Ratio, c.AtRisk)
	}
}

func TestRankAdj(t *testing.T) {
	f := newFixture(t, false, 16*1024, 0)
	f.cgroup("/app", limit64, 60*mib, 0, 10, 11, 12)
	f.proc(fakeProc{pid: 10, comm: "large", anon: 12000})
	f.proc(fakeProc{pid: 11, comm: "sacrifice", anon: 100, adj: 1000}) // 100 + 1000×16 = 16100
	f.proc(fakeProc{pid: 12, comm: "protected", anon: 14000, adj: -1000})
	c := row(t, f.snapshot(0), "/app")
	if got := pids(c.Candidates); !slices.Equal(got, []int{11, 10}) {
		t.Errorf("ranking %v, want the adj +1000 process before the large one, the adj -1000 one left out", got)
	}
	if c.Processes != 2 || c.Unkillable != 1 || !c.AtRisk {
		t.Errorf("processes %d unkillable %d at risk %v, want 2, 1, true", c.Processes, c.Unkillable, c.AtRisk)
	}
}

// An OOM in /parent weighs its whole subtree; /parent/shadowed's own 1 GiB
// limit is shadowed by its parent's 100 MiB, which is also what its
// processes are scored against; /parent/free has no limit and no row.
func TestRankSubtreeAndEffectiveLimit(t *testing.T) {
	f := newFixture(t, false, 16*1024, 0)
	f.cgroup("/parent", 100*mib, 90*mib, 0, 10)
	f.cgroup("/parent/free", -1, 50*mib, 0, 11)
	f.cgroup("/parent/shadowed", 1024*mib, 30*mib, 0, 12)
	f.cgroup("/parent/tight", 20*mib, 5*mib, 0, 13)
	f.cgroup("/elsewhere", -1, 50*mib, 0, 14)
	f.proc(fakeProc{pid: 10, comm: "p", anon: 1000})
	f.proc(fakeProc{pid: 11, comm: "free", anon: 12000})
	f.proc(fakeProc{pid: 12, comm: "shadowed", anon: 7000})
	f.proc(fakeProc{pid: 13, comm: "tight", anon: 1200})
	f.proc(fakeProc{pid: 14, comm: "out", anon: 20000})
	s := f.snapshot(0)
	var paths []string
	for _, c := range s.Cgroups {
		paths = append(paths, c.Path)
	}
	// Nearest to the effective limit first, the root (global OOM) last.
	if want := []string{"/parent", "/parent/shadowed", "/parent/tight", "/"}; !slices.Equal(paths, want) {
		t.Fatalf("rows %v, want %v", paths, want)
	}
	p := row(t, s, "/parent")
	if got := pids(p.Candidates); !slices.Equal(got, []int{11, 12, 13, 10}) {
		t.Errorf("/parent candidates %v, want its whole subtree ranked [11 12 13 10]", got)
	}
	if p.Candidates[0].Cgroup != "/parent/free" || p.EffectiveLimitPath != "/parent" {
		t.Errorf("victim lives in %q, limit held by %q: want /parent/free, /parent", p.Candidates[0].Cgroup, p.EffectiveLimitPath)
	}
	sh := row(t, s, "/parent/shadowed")
	if *sh.Limit != 1024*mib || *sh.EffectiveLimit != 100*mib || sh.EffectiveLimitPath != "/parent" || sh.TotalPages != 100*mib/pageSize {
		t.Errorf("shadowed: limit %d effective %d at %q totalpages %d, want 1 GiB, 100 MiB at /parent, %d",
			*sh.Limit, *sh.EffectiveLimit, sh.EffectiveLimitPath, sh.TotalPages, 100*mib/pageSize)
	}
	if tight := row(t, s, "/parent/tight"); tight.EffectiveLimitPath != "/parent/tight" || *tight.Ratio != 0.25 {
		t.Errorf("tight: limit held by %q ratio %v, want itself and 0.25", tight.EffectiveLimitPath, *tight.Ratio)
	}
	root := row(t, s, "/")
	if root.Ratio != nil || root.EffectiveLimit != nil || root.TotalPages != s.MachinePages || root.Candidates[0].Pid != 14 || len(root.Candidates) != 5 {
		t.Errorf("root %+v: want no ratio or limit, machine totalpages, every process, pid 14 first", root)
	}
}

// Equal limits: the innermost holds it (the kernel charges leaf first).
func TestRankEqualLimitInnermost(t *testing.T) {
	f := newFixture(t, true, 16*1024, 0)
	f.cgroup("/a", limit64, 10*mib, 0)
	f.cgroup("/a/b", limit64, 10*mib, 0, 10)
	f.proc(fakeProc{pid: 10, comm: "x", anon: 10})
	if c := row(t, f.snapshot(0), "/a/b"); c.EffectiveLimitPath != "/a/b" {
		t.Errorf("limit held by %q, want /a/b", c.EffectiveLimitPath)
	}
}

// The kernel keeps the last of equal scores it meets: the later-read
// process ranks first, and the tie is flagged.
func TestRankTies(t *testing.T) {
	f := newFixture(t, false, 16*1024, 0)
	f.cgroup("/app", limit64, 10*mib, 0, 20, 21, 22)
	f.proc(fakeProc{pid: 20, comm: "a", anon: 500})
	f.proc(fakeProc{pid: 21, comm: "b", anon: 500})
	f.proc(fakeProc{pid: 22, comm: "c", anon: 100})
	c := row(t, f.snapshot(2), "/app")
	if got := pids(c.Candidates); !slices.Equal(got, []int{21, 20}) || !c.Tie || c.Processes != 3 {
		t.Errorf("candidates %v tie %v processes %d, want [21 20] (top 2), true, 3", got, c.Tie, c.Processes)
	}
}

// Kernel threads and zombies (no mm), global init and processes that exited
// since cgroup.procs was read are no candidates.
func TestRankSkipsNonCandidates(t *testing.T) {
	f := newFixture(t, false, 16*1024, 0)
	f.cgroup("/", -1, 0, 0, 1, 2, 30, 31)
	f.proc(fakeProc{pid: 1, comm: "init", anon: 99999})
	f.proc(fakeProc{pid: 2, comm: "kthreadd", kthread: true})
	f.proc(fakeProc{pid: 30, comm: "ok", anon: 10})
	// 31 is listed but has no /proc entry: it exited.
	c := row(t, f.snapshot(0), "/")
	if got := pids(c.Candidates); !slices.Equal(got, []int{30}) {
		t.Errorf("candidates %v, want only [30]", got)
	}
}

// Swap the cgroup may use adds to an OOM's totalpages, capped by the
// machine's swap: v1 memsw is memory+swap, v2 swap.max swap alone.
func TestRankSwapAllowance(t *testing.T) {
	for _, v2 := range []bool{false, true} {
		f := newFixture(t, v2, 16*1024, 16) // 16 MiB of swap
		f.cgroup("/capped", limit64, 0, 0, 10)
		f.cgroup("/small", limit64, 0, 0, 11)
		if v2 {
			f.file("/capped", "memory.swap.max", "max\n")
			f.file("/small", "memory.swap.max", "4194304\n")
		} else {
			f.file("/capped", "memory.memsw.limit_in_bytes", "9223372036854771712\n")
			f.file("/small", "memory.memsw.limit_in_bytes", "71303168\n") // 64 + 4 MiB
		}
		f.proc(fakeProc{pid: 10, comm: "a", anon: 1})
		f.proc(fakeProc{pid: 11, comm: "b", anon: 1})
		s := f.snapshot(0)
		if got := row(t, s, "/capped").TotalPages; got != (64+16)*mib/pageSize {
			t.Errorf("v2=%v: unlimited swap gives totalpages %d, want limit + machine swap %d", v2, got, (64+16)*mib/pageSize)
		}
		if got := row(t, s, "/small").TotalPages; got != (64+4)*mib/pageSize {
			t.Errorf("v2=%v: 4 MiB of swap gives totalpages %d, want %d", v2, got, (64+4)*mib/pageSize)
		}
		// Swappiness 0 (v2: vm.swappiness; v1: the memcg's own) adds no swap.
		if v2 {
			f.write(filepath.Join(f.src.ProcRoot, "sys/vm/swappiness"), "0\n")
		} else {
			f.write(filepath.Join(f.src.dir("/capped"), "memory.swappiness"), "0\n")
		}
		if got := row(t, f.snapshot(0), "/capped").TotalPages; got != 64*mib/pageSize {
			t.Errorf("v2=%v: swappiness 0 gives totalpages %d, want the limit alone %d", v2, got, 64*mib/pageSize)
		}
	}
}

func TestRankJSONShape(t *testing.T) {
	f := newFixture(t, true, 16*1024, 0)
	f.cgroup("/app", limit64, 60*mib, 0, 10)
	f.proc(fakeProc{pid: 10, comm: "x", anon: 10, oomScore: 666})
	data, err := json.Marshal(f.snapshot(3))
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Time         string  `json:"time"`
		MachinePages *uint64 `json:"machine_pages"`
		Cgroups      []map[string]json.RawMessage
	}
	if err := json.Unmarshal(data, &doc); err != nil || doc.Time == "" || doc.MachinePages == nil || len(doc.Cgroups) != 2 {
		t.Fatalf("%s: %v", data, err)
	}
	for _, k := range []string{"path", "id", "usage_bytes", "working_set_bytes", "limit_bytes", "effective_limit_bytes",
		"effective_limit_path", "ratio", "at_risk", "totalpages", "processes", "unkillable", "candidates"} {
		if _, ok := doc.Cgroups[0][k]; !ok {
			t.Errorf("cgroups[0] has no %q: %s", k, data)
		}
	}
	var cands []map[string]json.RawMessage
	_ = json.Unmarshal(doc.Cgroups[0]["candidates"], &cands)
	for _, k := range []string{"pid", "comm", "cgroup", "oom_score_adj", "pages", "score", "oom_score", "model_oom_score"} {
		if _, ok := cands[0][k]; !ok {
			t.Errorf("candidate has no %q: %s", k, data)
		}
	}
	// The v2 root: no usage file, no limit, no ratio: null, not 0.
	for _, k := range []string{"usage_bytes", "limit_bytes", "ratio"} {
		if string(doc.Cgroups[1][k]) != "null" {
			t.Errorf("root %s = %s, want null", k, doc.Cgroups[1][k])
		}
	}
}
