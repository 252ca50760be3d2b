package daemon

import (
	"fmt"
	"github.com/oomtrace/oomtrace/kernel/psi"
	"maps"
	"slices"
	"time"
	"unicode/utf8"

	"github.com/oomtrace/oomtrace/enrich"
	"github.com/oomtrace/oomtrace/enrich/cgroups"
	"github.com/oomtrace/oomtrace/event"
	"github.com/oomtrace/oomtrace/kernel/node"
	"github.com/oomtrace/oomtrace/tracer"
	"github.com/rs/zerolog"
)

// startedEvent is the oomtrace_started line.
func startedEvent(h tracer.Hooks, e *enrich.Enricher, dockerOn bool, criEndpoint string, k8sEvents bool, metricsAddr string) event.Started {
	s := event.Started{
		Time:          time.Now(),
		SchemaVersion: event.SchemaVersion,
		Kernel:        kernelRelease(),
		Attach:        string(h.Attach()),
		Hooks: event.Hooks{
			OOMKillProcess:   orNone(h.Kill),
			MarkVictim:       orNone(h.Mark),
			MarkVictimLayout: orNone(string(h.MarkLayout)),
			SignalGenerate:   orNone(h.Signal),
			Candidates:       orNone(h.Candidates),
			AllocRefused:     append([]string{}, h.AllocRefused...),
		},
		Refused:     map[string]string{},
		Docker:      dockerOn,
		CRIEndpoint: criEndpoint,
		K8sEvents:   k8sEvents,
		MetricsAddr: metricsAddr,
	}
	maps.Copy(s.Refused, h.Refused)
	if root, v2, ok := e.Hierarchy(); ok {
		s.MemoryCgroups = &event.MemoryCgroups{Root: root, V2: v2}
	}
	if n, err := node.Read("/proc"); err == nil {
		s.Node = nodeEvent(n)
	}
	return s
}

func logStartup(log zerolog.Logger, h tracer.Hooks, e *enrich.Enricher, dockerOn bool, criEndpoint string, k8sEvents bool, metricsAddr string) {
	level := zerolog.InfoLevel
	if h.Attach() == tracer.AttachMarkVictimOnly {
		// Still every kill, but the decision only where the stack has it.
		level = zerolog.WarnLevel
	}
	event.Write(log, level, startedEvent(h, e, dockerOn, criEndpoint, k8sEvents, metricsAddr))
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

// killEvent is the oom_kill line of k, as r enriched it.
func killEvent(k tracer.Kill, r enrich.Result) event.Kill {
	v := k.Victim
	ev := event.Kill{
		Time:          k.Time,
		SchemaVersion: event.SchemaVersion,
		BootNs:        k.BootNs,
		Attach:        string(k.Attach),
		Source:        event.SourceBPF,
		Victim: event.Victim{
			Pid: v.Pid, Tid: v.Tid, Comm: v.Comm, UID: v.UID, OOMScoreAdj: v.OOMScoreAdj, StartTimeNs: v.StartTime,
			Pages:   event.Pages{Anon: v.Pages.Anon, File: v.Pages.File, Shmem: v.Pages.Shmem, Swap: v.Pages.Swap, PgTables: v.Pages.PgTables},
			Cgroup:  cgroupEvent(v, r),
			Partial: v.Partial,
			Unknown: v.Unknown.Names(),
		},
		Trigger:      event.Trigger{Pid: k.Trigger.Pid, Tid: k.Trigger.Tid, Comm: k.Trigger.Comm, KernelStack: r.KernelStack},
		OOM:          event.OOM{Memcg: memcgEvent(nil, r.Hit), TotalPagesExpected: r.TotalPagesExpected},
		Score:        event.Score{Kernel: k.KernelScore, OOMScore: r.OOMScore},
		Group:        []event.Process{},
		Kills:        k.Kills(),
		Repeat:       k.Repeat,
		Container:    containerEvent(r),
		K8s:          k8sEvent(r),
		EnrichErrors: r.Errors,
	}
	if ev.EnrichErrors == nil {
		ev.EnrichErrors = map[string]string{}
	}
	if s := k.Scope; s != nil {
		ev.OOM = event.OOM{
			Source:             event.Ptr(string(k.ScopeFrom)),
			Constraint:         event.Ptr(s.Constraint.String()),
			TotalPages:         event.Ptr(s.TotalPages),
			Memcg:              memcgEvent(&s.MemcgID, r.Hit),
			GFPMask:            event.Ptr(s.GFPMask),
			GFPFlags:           r.GFPFlags,
			Order:              event.Ptr(s.Order),
			TotalPagesExpected: r.TotalPagesExpected,
		}
	}
	if c := r.Score; c != nil {
		ev.Score.Recomputed, ev.Score.Match, ev.Score.SpecialCase = event.Ptr(c.Recomputed), event.Ptr(c.Match), c.Reason
	}
	for _, g := range k.Group {
		ev.Group = append(ev.Group, event.Process{Pid: g.Pid, Tid: g.Tid, Comm: g.Comm})
	}
	if r.Node != nil {
		ev.Node = nodeEvent(*r.Node)
	}
	if s := r.MemcgStat; s != nil {
		ev.OOM.Memcg.Stat = &event.MemcgStat{Anon: s.Anon, File: s.File, Kernel: s.Kernel, Slab: s.Slab, Shmem: s.Shmem,
			Sock: s.Sock, FileDirty: s.FileDirty, FileWriteback: s.FileWriteback}
	}
	if p := r.PSI; p != nil {
		stall := func(s psi.Stall) event.PSIStall {
			return event.PSIStall{Avg10: s.Avg10, Avg60: s.Avg60, Avg300: s.Avg300, TotalUs: s.TotalUs}
		}
		ev.OOM.Memcg.PSI = &event.PSI{Scope: r.PSIScope, Some: stall(p.Some), Full: stall(p.Full)}
	}
	if r.History != nil {
		ev.OOM.Memcg.History = make([]event.UsageSample, len(r.History))
		for i, s := range r.History {
			ev.OOM.Memcg.History[i] = event.UsageSample{Time: s.At, UsageBytes: s.UsageBytes}
		}
	}
	if r.Top != nil {
		ev.OOM.Memcg.Top = make([]event.TopProcess, len(r.Top))
		for i, t := range r.Top {
			ev.OOM.Memcg.Top[i] = event.TopProcess{Pid: t.Pid, Comm: t.Comm, RSSBytes: t.RSSBytes}
		}
	}
	if e := r.MemcgEvents; e != nil {
		ev.OOM.Memcg.Events = &event.MemcgEvents{Low: e.Low, High: e.High, Max: e.Max, OOM: e.OOM, OOMKill: e.OOMKill,
			OOMGroupKill: e.OOMGroupKill, Failcnt: e.Failcnt, MemswFailcnt: e.MemswFailcnt}
	}
	setCandidates(&ev, r)
	return ev
}

// logKill writes one oom_kill event, and a score_mismatch after it when the
// kernel's score is not the model's.
func logKill(log zerolog.Logger, k tracer.Kill, r enrich.Result) {
	event.Write(log, zerolog.InfoLevel, killEvent(k, r))
	if c := r.Score; c != nil && !c.Match {
		v := k.Victim
		event.Write(log, zerolog.WarnLevel, event.ScoreMismatch{
			Time: k.Time, Pid: v.Pid, Kernel: *k.KernelScore, Recomputed: c.Recomputed, Expected: c.Expected,
			RSS: v.Pages.RSS(), Swap: v.Pages.Swap, PgTables: v.Pages.PgTables, OOMScoreAdj: v.OOMScoreAdj,
			TotalPages: k.Scope.TotalPages,
		})
	}
}

func cgroupEvent(v tracer.Task, r enrich.Result) event.Cgroup {
	c := event.Cgroup{ID: v.CgroupID, DflID: v.DflCgroupID, Path: event.OptStr(r.VictimPath), Chain: []event.Memcg{}}
	if l := r.Limits; l != nil {
		c.EffectiveLimitBytes = l.Effective
		c.EffectiveLimitPath = event.Ptr(l.EffectivePath)
		for _, m := range l.Chain {
			c.Chain = append(c.Chain, event.Memcg{
				Path: m.Path, LimitBytes: m.Limit, HighBytes: m.High, SwapLimitBytes: m.SwapLimit,
				MemswLimitBytes: m.MemSwLimit, UsageBytes: m.Usage, MaxUsageBytes: m.MaxUsage, Removed: m.Removed,
			})
		}
	}
	return c
}

// memcgEvent is oom.memcg; id nil when the decision is unknown.
func memcgEvent(id *uint64, hit *cgroups.Hit) event.OOMMemcg {
	m := event.OOMMemcg{ID: id}
	if hit != nil {
		m.Path, m.LimitBytes, m.Source = event.Ptr(hit.Path), hit.Limit, event.Ptr(hit.Source)
	}
	return m
}

func containerEvent(r enrich.Result) event.Container {
	c := r.Container
	ev := event.Container{
		Runtime: event.OptStr(c.Runtime), ID: event.OptStr(c.ID), Unit: event.OptStr(c.Unit),
		Labels: map[string]any{},
	}
	if i := r.Docker; i != nil {
		ev.Labels = boundedLabels(i.Labels)
		ev.Name, ev.Image, ev.ImageID = event.Ptr(i.Name), event.Ptr(i.Image), event.Ptr(i.ImageID)
		ev.MemoryLimitBytes = event.Ptr(i.MemoryLimit)
	}
	if i := r.CRI; i != nil {
		ev.Labels = boundedLabels(i.Labels)
		ev.Name, ev.Image, ev.ImageID = event.OptStr(i.Name), event.OptStr(i.Image), event.OptStr(i.ImageRef)
	}
	return ev
}

// k8sEvent is the pod as the cgroup path gives it and, where the runtime
// answered over the CRI, as the runtime names it.
func k8sEvent(r enrich.Result) event.K8s {
	k := event.K8s{PodUID: event.OptStr(r.Container.PodUID), QoS: event.OptStr(r.Container.QoS)}
	if i := r.CRI; i != nil {
		k.Namespace, k.Pod, k.Container = event.OptStr(i.Namespace), event.OptStr(i.Pod), event.OptStr(i.Name)
		if i.PodUID != "" {
			k.PodUID = event.Ptr(i.PodUID)
		}
	}
	return k
}

// boundedLabels are a container's labels as a line shows them: sorted,
// at most maxLabels, each key and value cut to maxLabelBytes.
func boundedLabels(labels map[string]string) map[string]any {
	out := map[string]any{}
	keys := slices.Sorted(maps.Keys(labels))
	for n, k := range keys {
		if n == maxLabels {
			out["oomtrace.truncated_labels"] = len(keys) - maxLabels
			break
		}
		out[bounded(k)] = bounded(labels[k])
	}
	return out
}

// Bounds on what a container's labels add to a line: a label is set by
// whoever starts the container, and one huge value must not make every event
// of that container megabytes long.
const (
	maxLabels     = 64
	maxLabelBytes = 1024
)

// bounded cuts s to maxLabelBytes on a rune boundary, saying how much went.
func bounded(s string) string {
	if len(s) <= maxLabelBytes {
		return s
	}
	cut := maxLabelBytes
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return fmt.Sprintf("%s…(%d bytes truncated)", s[:cut], len(s)-cut)
}

func nodeEvent(n node.Context) *event.Node {
	return &event.Node{
		OvercommitMemory: n.OvercommitMemory, OvercommitRatio: n.OvercommitRatio, PanicOnOOM: n.PanicOnOOM,
		OOMKillAllocatingTask: n.OOMKillAllocatingTask, OOMDumpTasks: n.OOMDumpTasks,
		MemTotalBytes: n.MemTotalBytes, SwapTotalBytes: n.SwapTotalBytes,
	}
}
