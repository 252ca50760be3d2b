package integration

// The tracer's kills, enriched: cgroup paths and limits resolved on the real
// hierarchy (v1 on the host, v2 in the VM) and the kernel's score checked by
// the model.

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/oomtrace/oomtrace/enrich"
	"github.com/oomtrace/oomtrace/enrich/cgroups"
	"github.com/oomtrace/oomtrace/internal/oomtest"
	"github.com/oomtrace/oomtrace/kernel/gfp"
	"github.com/oomtrace/oomtrace/tracer"
)

func newEnricher(t *testing.T) *enrich.Enricher {
	t.Helper()
	h, err := cgroups.FindMemoryHierarchy()
	if err != nil {
		t.Skipf("needs memory cgroups: %v", err)
	}
	e := enrich.New(&h, nil)
	if err := e.Prime(); err != nil {
		t.Fatal(err)
	}
	return e
}

// relPath is a scratch cgroup's path inside its hierarchy, as events give it.
func relPath(h oomtest.Hierarchy, cg *oomtest.Cgroup) string {
	return strings.TrimPrefix(cg.Path, h.Root)
}

// checkScore asserts the model agrees with the kernel wherever the kernel's
// score is known, and with the OOM's scope.
func checkScore(t *testing.T, k tracer.Kill, r enrich.Result) {
	t.Helper()
	if k.KernelScore == nil {
		if r.Score != nil {
			t.Errorf("score checked without a kernel score: %+v", r.Score)
		}
		return
	}
	if r.Score == nil || !r.Score.Match {
		t.Errorf("kernel score %d, model %+v (victim %+v)", *k.KernelScore, r.Score, k.Victim.Pages)
	}
	if r.TotalPagesExpected == nil || *r.TotalPagesExpected != k.Scope.TotalPages {
		t.Errorf("totalpages %d, model expects %v", k.Scope.TotalPages, r.TotalPagesExpected)
	}
	// (1000 + badness*1000/machine) * 2/3: rss and adj +1000 can each add
	// up to the machine's size, so 0..2000.
	if r.OOMScore == nil || *r.OOMScore < 0 || *r.OOMScore > 2000 {
		t.Errorf("oom_score %v out of range", fmtPtr(r.OOMScore))
	}
}

// A child limited to 256 MiB under a parent limited to 48 MiB: the parent's
// limit kills, and the event must blame the parent, not the child.
func TestNestedLimitBlamesAncestor(t *testing.T) {
	r := startTracer(t)
	e := newEnricher(t)
	h := oomtest.MustHierarchy(t)
	parent := oomtest.NewCgroup(t, h, nil, "parent", 48*mib)
	child := oomtest.NewCgroup(t, h, parent, "child", 256*mib)
	c := snapshot(t, child)

	runHogs(t, oomtest.Hog{Cgroup: child, MB: 200, Comm: "oomhog-nested"})
	kills := r.waitKills(t, c.delta(t, 0), inCgroup(child))
	c.checkMachine(t, r)
	if len(kills) != 1 {
		t.Fatalf("%d kills", len(kills))
	}
	k := kills[0]
	res := e.Enrich(context.Background(), k)
	if len(res.Errors) > 0 {
		t.Errorf("enrichment errors: %v", res.Errors)
	}
	if want := relPath(h, child); res.VictimPath != want {
		t.Errorf("victim path %q, want %q", res.VictimPath, want)
	}
	if res.Limits == nil || res.Limits.Effective == nil || *res.Limits.Effective != 48*mib ||
		res.Limits.EffectivePath != relPath(h, parent) {
		t.Fatalf("limits %+v: want the parent's 48 MiB as effective", res.Limits)
	}
	wantSource := cgroups.SourceInferred
	if k.Scope != nil {
		wantSource = cgroups.SourceKernel
		if k.Scope.MemcgID != parent.ID {
			t.Errorf("kernel's oom memcg %d, parent %d, child %d", k.Scope.MemcgID, parent.ID, child.ID)
		}
	}
	if res.Hit == nil || res.Hit.Path != relPath(h, parent) || res.Hit.Source != wantSource {
		t.Errorf("hit %+v, want the parent %s from %s", res.Hit, relPath(h, parent), wantSource)
	}
	checkScore(t, k, res)
}

// Every kill of a plain memcg OOM passes the model's check and resolves.
func TestEnrichedMemcgKills(t *testing.T) {
	r := startTracer(t)
	e := newEnricher(t)
	h := oomtest.MustHierarchy(t)
	cg := oomtest.NewCgroup(t, h, nil, "enrich", 64*mib)
	c := snapshot(t, cg)
	hogs := []oomtest.Hog{
		{Cgroup: cg, MB: 256, Comm: "oomhog-a"},
		{Cgroup: cg, MB: 256, Threads: 4, Comm: "oomhog-b", Adj: 500},
	}
	if oomtest.CanLowerOOMScoreAdj() {
		hogs = append(hogs, oomtest.Hog{Cgroup: cg, MB: 256, Comm: "oomhog-c", Adj: -500})
	} else {
		t.Log("no CAP_SYS_RESOURCE here: the negative oom_score_adj case runs in the VM only")
	}
	runHogs(t, hogs...)
	kills := r.waitKills(t, c.delta(t, 0), inCgroup(cg))
	c.checkMachine(t, r)
	for _, k := range kills {
		res := e.Enrich(context.Background(), k)
		if res.VictimPath != relPath(h, cg) {
			t.Errorf("victim path %q", res.VictimPath)
		}
		checkScore(t, k, res)
	}
}

// The OOM's gfp flags are named as the kernel names them: every "invoked
// oom-killer: gfp_mask=0x...(...)" line in the kernel log (this test's kill,
// and any earlier one's) names its mask as the kernel's table read from
// tracefs does, and the kill's event carries that naming of its own mask.
func TestGFPFlagsAsTheKernelPrints(t *testing.T) {
	oomtest.Tracefs(t)
	r := startTracer(t)
	e := newEnricher(t)
	if err := e.GFPNamesError(); err != nil {
		t.Fatalf("the kernel's gfp names: %v", err)
	}
	tab, err := gfp.Load()
	if err != nil {
		t.Fatal(err)
	}
	h := oomtest.MustHierarchy(t)
	cg := oomtest.NewCgroup(t, h, nil, "gfp", 64*mib)
	c := snapshot(t, cg)
	runHogs(t, oomtest.Hog{Cgroup: cg, MB: 256, Comm: "oomhog-gfp"})
	kills := r.waitKills(t, c.delta(t, 0), inCgroup(cg))
	c.checkMachine(t, r)

	headers, err := oomtest.KernelOOMHeaders()
	if err != nil {
		t.Fatal(err)
	}
	// The kernel rate-limits these lines, but the log keeps every one
	// printed, and a boot's first OOM always prints.
	if len(headers) == 0 {
		t.Fatal("the kernel log holds no \"invoked oom-killer\" line")
	}
	for _, hd := range headers {
		if got := strings.Join(tab.Names(hd.GFPMask), "|"); got != hd.Names {
			t.Errorf("gfp_mask=%#x: the kernel printed (%s), the table names it (%s)", hd.GFPMask, hd.Names, got)
		}
	}
	scoped := 0
	for _, k := range kills {
		res := e.Enrich(context.Background(), k)
		if k.Scope == nil {
			if res.GFPFlags != nil {
				t.Errorf("no scope, yet gfp flags %q", res.GFPFlags)
			}
			continue
		}
		scoped++
		t.Logf("kill of %d: gfp_mask %#x, flags %q", k.Victim.Pid, k.Scope.GFPMask, res.GFPFlags)
		want := tab.Names(k.Scope.GFPMask)
		if want == nil {
			want = []string{}
		}
		if !slices.Equal(res.GFPFlags, want) {
			t.Errorf("gfp_mask %#x: event flags %q, want %q", k.Scope.GFPMask, res.GFPFlags, want)
		}
	}
	t.Logf("%d kernel lines checked; %d of %d kills with the kernel's scope", len(headers), scoped, len(kills))
}

func fmtPtr(p *int64) any {
	if p == nil {
		return nil
	}
	return *p
}
