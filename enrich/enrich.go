package enrich

import (
	"context"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/oomtrace/oomtrace/enrich/cgroups"
	"github.com/oomtrace/oomtrace/enrich/cri"
	"github.com/oomtrace/oomtrace/enrich/docker"
	"github.com/oomtrace/oomtrace/enrich/history"
	"github.com/oomtrace/oomtrace/kernel/badness"
	"github.com/oomtrace/oomtrace/kernel/cgroupfs"
	"github.com/oomtrace/oomtrace/kernel/gfp"
	"github.com/oomtrace/oomtrace/kernel/kallsyms"
	"github.com/oomtrace/oomtrace/kernel/node"
	"github.com/oomtrace/oomtrace/kernel/psi"
	"github.com/oomtrace/oomtrace/rank"
	"github.com/oomtrace/oomtrace/tracer"
)

// Result is what enrichment found for one kill. Nil pointers are unknown.
type Result struct {
	VictimPath string // memory cgroup path, "" when unresolved
	Limits     *cgroups.Limits
	// Hit is the memcg whose limit the OOM ran into: from the kernel's
	// oom.memcg.id, or inferred (the smallest limit on the path) when
	// oom_kill_process() is not hooked. Nil for a global OOM.
	Hit *cgroups.Hit

	Container cgroups.Container
	Docker    *docker.Info
	// CRI is the Kubernetes pod and container the runtime names, for a
	// container of a CRI runtime (containerd, CRI-O); nil otherwise or when
	// it could not say (Errors["cri"]).
	CRI *cri.Info

	Score *badness.Check // nil when the kernel's score is unknown
	// OOMScore is /proc/PID/oom_score as it read at the kill.
	OOMScore           *int64
	TotalPagesExpected *uint64 // what oc->totalpages should be; nil when unknown

	Node *node.Context // on global OOMs

	// Candidates are the tasks the decision weighed, the victim first;
	// nil when listing them is off or failed (Errors["candidates"]).
	Candidates *Candidates

	// GFPFlags names the OOM's gfp_mask as the kernel prints it; nil when
	// the scope or the kernel's names are unknown, empty for a mask of 0.
	GFPFlags []string

	// MemcgStat is where the OOM scope's memory went, read just after the
	// kill (the node's for a global OOM); MemcgEvents its counters (nil
	// for a global OOM). Nil when unread (Errors["memcg_stat"],
	// Errors["memcg_events"]) or the OOM memcg is unknown.
	MemcgStat   *cgroupfs.MemStat
	MemcgEvents *cgroupfs.MemEvents
	// PSI is the memory pressure of the OOM scope (PSIScope "cgroup", a
	// cgroup v2's), or of the node ("node": a global OOM, or cgroup v1,
	// whose cgroups have none); nil when unread (Errors["psi"]: PSI off or
	// absent in this kernel).
	PSI      *psi.Pressure
	PSIScope string

	// History is the OOM memcg's usage over the last minute, oldest first:
	// empty when it was not above the sampling level, nil when nothing
	// samples (see UseHistory) or the OOM was global.
	History []history.Sample

	// Top are the OOM scope's largest processes at the kill, the largest
	// first (nil when unread: Errors["top"]).
	Top []TopProcess

	// KernelStack names the trigger's kernel stack at the OOM, innermost
	// first; nil when unknown (Errors["kernel_stack"]).
	KernelStack []string

	Errors map[string]string // source -> what went wrong
}

// nodeTTL is how long a read of the node's settings serves: a storm of
// kills reads them once, yet an admin's change shows within a second.
const nodeTTL = time.Second

// nodeContext reads the node's settings, at most once per nodeTTL.
func (e *Enricher) nodeContext() (node.Context, error) {
	e.nodeMu.Lock()
	defer e.nodeMu.Unlock()
	if now := time.Now(); now.Sub(e.nodeAt) > nodeTTL {
		e.node, e.nodeErr = node.Read(e.procRoot)
		e.nodeAt = now
	}
	return e.node, e.nodeErr
}

// Stats counts enrichment outcomes; the daemon reports them.
type Stats struct {
	ScoreMismatches atomic.Uint64
	Errors          atomic.Uint64
}

// Enricher enriches kills. Safe for concurrent use.
type Enricher struct {
	hierarchy *cgroups.Hierarchy // nil: no memory cgroups on this machine
	resolver  *cgroups.Resolver
	docker    *docker.Cache // nil: Docker metadata off
	cri       *cri.Cache    // nil: CRI metadata off
	procRoot  string
	pageSize  uint64
	Stats     Stats

	keep       int // candidates listed per kill, see KeepCandidates
	limits     limitsCache
	procs      procsCache
	procFiles  *rank.ProcFiles // the model's /proc files, kept open
	victims    victimSet       // recent victims, out of the model's lists
	containers containerMemo

	// gfp is the running kernel's table of gfp flag names, read once;
	// gfpErr says why there is none.
	gfp    gfp.Table
	gfpErr error

	symbols kallsyms.Symbolizer
	// statFiles keeps the OOM memcgs' stat, event and pressure files open
	// between kills.
	statFiles cgroupfs.OpenFiles
	hist      *history.Recorder

	nodeMu  sync.Mutex
	node    node.Context
	nodeErr error
	nodeAt  time.Time
}

// New returns an Enricher. Without a memory cgroup hierarchy (h nil) the
// cgroup fields stay empty; without a Docker cache, container names do.
func New(h *cgroups.Hierarchy, d *docker.Cache) *Enricher {
	e := &Enricher{hierarchy: h, docker: d, procRoot: "/proc", pageSize: uint64(os.Getpagesize()), keep: tracer.DefaultCandidates,
		limits: limitsCache{ttl: limitsTTL}, procs: procsCache{ttl: procsTTL},
		procFiles: rank.NewProcFiles()}
	e.gfp, e.gfpErr = gfp.Load()
	if h != nil {
		e.resolver = cgroups.NewResolver(*h)
	}
	return e
}

// criRuntimes are the cgroup paths' runtimes that the CRI names: "cri" is
// a Kubernetes container under the cgroupfs driver, whatever its runtime.
var criRuntimes = map[string]bool{"cri": true, "containerd": true, "crio": true}

// UseCRI names Kubernetes pods and containers through c (nil: off).
func (e *Enricher) UseCRI(c *cri.Cache) { e.cri = c }

// Prime fills the cgroup cache, so cgroups removed right after a kill
// resolve from the first event on.
func (e *Enricher) Prime() error {
	if e.resolver == nil {
		return nil
	}
	return e.resolver.Refresh()
}

// Enrich never fails: what it cannot find is named in Result.Errors. It
// waits for Docker at most the cache's bound, and only for containers.
func (e *Enricher) Enrich(ctx context.Context, k tracer.Kill) Result {
	r := Result{Errors: map[string]string{}}
	fail := func(source string, err error) {
		r.Errors[source] = err.Error()
		e.Stats.Errors.Add(1)
	}
	now := time.Now()
	e.victims.add(now, k.Victim.Pid)
	for _, g := range k.Group {
		e.victims.add(now, g.Pid)
	}
	nodeCtx, nodeErr := e.nodeContext()
	if nodeErr != nil {
		fail("node", nodeErr)
	}
	global := k.Scope != nil && k.Scope.Constraint == tracer.ConstraintNone
	notMemcg := k.Scope != nil && k.Scope.Constraint != tracer.ConstraintMemcg
	if global {
		r.Node = &nodeCtx
	}

	if k.Scope != nil && e.gfp != nil {
		r.GFPFlags = e.gfp.Names(k.Scope.GFPMask)
		if r.GFPFlags == nil {
			r.GFPFlags = []string{} // known: a mask of 0, which names nothing
		}
	}
	if stack, err := e.kernelStack(k.TriggerStack); err != nil {
		fail("kernel_stack", err)
	} else {
		r.KernelStack = stack
	}
	e.cgroups(k, &r, fail)
	// Podman serves the same API on its Docker-compatible socket, when
	// --docker is pointed at it (DOCKER_HOST).
	if (r.Container.Runtime == "docker" || r.Container.Runtime == "podman") && e.docker != nil {
		info, err := e.docker.Lookup(ctx, r.Container.ID)
		if err != nil {
			fail("docker", err)
		} else {
			r.Docker = &info
		}
	}
	if criRuntimes[r.Container.Runtime] && e.cri != nil {
		info, err := e.cri.Lookup(ctx, r.Container.ID)
		if err != nil {
			fail("cri", err)
		} else {
			r.CRI = &info
		}
	}
	e.memStat(&r, global, fail)
	if e.hist != nil && !global && r.Hit != nil {
		r.History = e.hist.Samples(r.Hit.Path, k.Time)
		if r.History == nil {
			r.History = []history.Sample{}
		}
	}
	e.score(k, &r, nodeCtx, global, notMemcg)
	path, total := e.candidateScope(k, &r, nodeCtx)
	cands, err := e.candidates(k, total, path)
	if err != nil {
		fail("candidates", err)
	}
	r.Candidates = cands
	if r.Top, err = e.top(k, path); err != nil {
		fail("top", err)
	}
	return r
}

// candidateScope is where the OOM's candidates live and the scope's size
// in pages: the memcg whose limit was hit, else the whole machine.
func (e *Enricher) candidateScope(k tracer.Kill, r *Result, n node.Context) (path string, totalPages uint64) {
	memcg := k.Scope == nil || k.Scope.Constraint == tracer.ConstraintMemcg
	path, totalPages = "/", n.MachinePages(e.pageSize)
	if memcg && r.Hit != nil {
		path = r.Hit.Path
		if t := e.hitTotalPages(r, n); t != nil {
			totalPages = *t
		}
	}
	if k.Scope != nil {
		totalPages = k.Scope.TotalPages
	}
	return path, totalPages
}

// KeepCgroups resolves a kill's cgroups (the victim's and the OOM's memcg)
// into the resolver's cache the moment its record is read, before it waits
// in the queue: a container's cgroup is removed as soon as its runtime sees
// the process die, and Enrich, later, would find nothing to name. Only the
// cache and a file handle, never a walk: it runs on the reading goroutine.
func (e *Enricher) KeepCgroups(k tracer.Kill) {
	if e.resolver == nil {
		return
	}
	e.resolver.Keep(k.Victim.CgroupID)
	if k.Scope != nil {
		e.resolver.Keep(k.Scope.MemcgID)
	}
}

func (e *Enricher) cgroups(k tracer.Kill, r *Result, fail func(string, error)) {
	if e.resolver == nil {
		return
	}
	path, ok := e.resolver.Path(k.Victim.CgroupID)
	if !ok {
		fail("cgroup", fmt.Errorf("cgroup id %d not found in %s", k.Victim.CgroupID, e.hierarchy.Root))
		return
	}
	r.VictimPath = path
	r.Container = e.containers.parse(path)
	limits, err := e.limits.get(path, time.Now(), func(p string) (cgroups.Limits, error) {
		return cgroups.ReadLimits(*e.hierarchy, p)
	})
	if err != nil {
		fail("cgroup", err)
		return
	}
	r.Limits = &limits
	if k.Scope != nil && k.Scope.Constraint != tracer.ConstraintMemcg {
		return // a global, cpuset or mempolicy OOM: no cgroup limit was hit
	}
	oomPath := ""
	if k.Scope != nil {
		if oomPath, ok = e.resolver.Path(k.Scope.MemcgID); !ok {
			fail("cgroup", fmt.Errorf("oom memcg id %d not found", k.Scope.MemcgID))
		}
	}
	if hit, ok := limits.HitLimit(oomPath); ok {
		r.Hit = &hit
	}
}

func (e *Enricher) score(k tracer.Kill, r *Result, n node.Context, global, notMemcg bool) {
	v, inScan := scoredVictim(k)
	in := badness.Inputs{
		RSS: v.Pages.RSS(), Swap: v.Pages.Swap, PgTables: v.Pages.PgTables,
		OOMScoreAdj: int(v.OOMScoreAdj), OOMOrigin: v.OOMOrigin,
	}
	if machine := n.MachinePages(e.pageSize); machine > 0 {
		// /proc/PID/oom_score scores against the whole machine.
		in.TotalPages = machine
		s := badness.ProcOOMScore(badness.Score(in), machine)
		r.OOMScore = &s
		if global {
			r.TotalPagesExpected = &machine
		}
	}
	if k.Scope == nil || k.KernelScore == nil {
		return
	}
	if k.Scope.Constraint == tracer.ConstraintMemcg {
		r.TotalPagesExpected = e.memcgTotalPages(r, n)
	}
	in.TotalPages = k.Scope.TotalPages
	check := badness.Verify(badness.Decision{
		Inputs:             in,
		KernelScore:        *k.KernelScore,
		NotMemcg:           notMemcg,
		VictimIsTrigger:    k.Trigger.Pid == v.Pid,
		KillAllocatingTask: n.OOMKillAllocatingTask,
		CountersAtKill:     k.ScopeFrom == tracer.ScopeFromStack || !inScan,
	})
	r.Score = &check
	if !check.Match {
		e.Stats.ScoreMismatches.Add(1)
	}
}

// scoredVictim is the victim with the counters the kernel scored it by:
// where oom_badness() is hooked, as read at its return in the scan, which
// is what chosen_points was computed from; a victim read later, at
// oom_kill_process(), may have moved a page meanwhile if it was running
// on another CPU. Else the victim as captured.
func scoredVictim(k tracer.Kill) (v tracer.Task, inScan bool) {
	if c := k.Candidates; c != nil && k.KernelScore != nil {
		for _, t := range c.List {
			if t.Pid == k.Victim.Pid && t.Score == *k.KernelScore {
				v := k.Victim
				v.Pages, v.OOMScoreAdj = t.Pages, t.OOMScoreAdj
				return v, true
			}
		}
	}
	return k.Victim, false
}

// memcgTotalPages is mem_cgroup_get_max() of the memcg whose limit was hit
// (see cgroupfs.MemcgMax), from the limits read after the kill; nil when
// they could not be read.
func (e *Enricher) memcgTotalPages(r *Result, n node.Context) *uint64 {
	if r.Hit == nil || r.Hit.Source != cgroups.SourceKernel {
		return nil
	}
	return e.hitTotalPages(r, n)
}

// hitTotalPages is mem_cgroup_get_max() of r.Hit, however it was found.
func (e *Enricher) hitTotalPages(r *Result, n node.Context) *uint64 {
	if r.Hit == nil || r.Hit.Limit == nil || r.Limits == nil {
		return nil
	}
	mx := cgroupfs.MemcgMax{Limit: *r.Hit.Limit}
	for _, m := range r.Limits.Chain {
		if m.Path == r.Hit.Path {
			mx.SwapLimit, mx.MemswLimit, mx.Swappiness = m.SwapLimit, m.MemSwLimit, m.Swappiness
		}
	}
	want := mx.TotalPages(n.Swappiness, n.SwapTotalBytes, e.pageSize)
	return &want
}

// GFPNamesError says why gfp masks go unnamed (nil when they are named),
// for a diagnostic at startup.
func (e *Enricher) GFPNamesError() error { return e.gfpErr }

// Hierarchy says where memory cgroups are resolved, for the startup line.
func (e *Enricher) Hierarchy() (root string, v2, ok bool) {
	if e.hierarchy == nil {
		return "", false, false
	}
	return e.hierarchy.Root, e.hierarchy.V2, true
}

// UseHistory has each kill carry its OOM memcg's recent usage from r,
// which the daemon's oom_risk watcher keeps told of the cgroups to sample.
func (e *Enricher) UseHistory(r *history.Recorder) { e.hist = r }

// History is what UseHistory set, nil for none.
func (e *Enricher) History() *history.Recorder { return e.hist }
