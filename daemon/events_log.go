package daemon

import (
	"fmt"
	"maps"
	"slices"
	"time"
	"unicode/utf8"

	"github.com/oomtrace/oomtrace/enrich"
	"github.com/oomtrace/oomtrace/enrich/cgroups"
	"github.com/oomtrace/oomtrace/enrich/node"
	"github.com/oomtrace/oomtrace/tracer"
	"github.com/rs/zerolog"
)

// schemaVersion changes only when a field changes meaning or goes away;
// added fields keep it. docs/events.md describes version 1.
const schemaVersion = 1

func init() {
	zerolog.TimeFieldFormat = time.RFC3339Nano
}

func logStartup(log zerolog.Logger, h tracer.Hooks, e *enrich.Enricher, dockerOn bool, metricsAddr string) {
	ev := log.Info()
	if h.Attach() == tracer.AttachMarkVictimOnly {
		// Still every kill, but without the kernel's score and the OOM's scope.
		ev = log.Warn()
	}
	refused := zerolog.Dict()
	for hook, why := range h.Refused {
		refused.Str(hook, why)
	}
	ev = ev.Time("time", time.Now()).
		Int("schema_version", schemaVersion).
		Str("kernel", kernelRelease()).
		Str("attach", string(h.Attach())).
		Dict("hooks", zerolog.Dict().
			Str("oom_kill_process", orNone(h.Kill)).
			Str("mark_victim", orNone(h.Mark)).
			Str("mark_victim_layout", orNone(string(h.MarkLayout))).
			Str("signal_generate", orNone(h.Signal))).
		Dict("refused", refused).
		Bool("docker", dockerOn).
		Str("metrics_addr", metricsAddr)
	if root, v2, ok := e.Hierarchy(); ok {
		ev.Dict("memory_cgroups", zerolog.Dict().Str("root", root).Bool("v2", v2))
	} else {
		ev.Interface("memory_cgroups", nil)
	}
	if n, err := node.Read("/proc"); err == nil {
		ev.Dict("node", nodeDict(n))
	}
	ev.Msg("oomtrace_started")
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

// logKill writes one oom_kill event; docs/events.md documents every field.
func logKill(log zerolog.Logger, k tracer.Kill, r enrich.Result) {
	v := k.Victim
	victim := zerolog.Dict().
		Uint32("pid", v.Pid).
		Uint32("tid", v.Tid).
		Str("comm", v.Comm).
		Uint32("uid", v.UID).
		Int32("oom_score_adj", v.OOMScoreAdj).
		Uint64("start_time_ns", v.StartTime).
		Dict("pages", zerolog.Dict().
			Uint64("anon", v.Pages.Anon).
			Uint64("file", v.Pages.File).
			Uint64("shmem", v.Pages.Shmem).
			Uint64("swap", v.Pages.Swap).
			Uint64("pgtables", v.Pages.PgTables)).
		Dict("cgroup", cgroupDict(v, r))
	if v.Partial {
		victim.Bool("partial", true)
	}
	victim.Strs("unknown", v.Unknown.Names())

	oom := zerolog.Dict()
	score := zerolog.Dict()
	if s := k.Scope; s != nil {
		oom.Str("source", string(k.ScopeFrom)).
			Str("constraint", s.Constraint.String()).
			Uint64("totalpages", s.TotalPages).
			Dict("memcg", memcgDict(&s.MemcgID, r.Hit)).
			Uint32("gfp_mask", s.GFPMask).
			Int32("order", s.Order)
	} else {
		oom.Interface("source", nil).
			Interface("constraint", nil).
			Interface("totalpages", nil).
			Dict("memcg", memcgDict(nil, r.Hit)).
			Interface("gfp_mask", nil).
			Interface("order", nil)
	}
	oom.Interface("totalpages_expected", r.TotalPagesExpected)
	if k.KernelScore != nil {
		score.Int64("kernel", *k.KernelScore)
	} else {
		score.Interface("kernel", nil)
	}
	if c := r.Score; c != nil {
		score.Int64("recomputed", c.Recomputed).Bool("match", c.Match)
		if c.Reason != "" {
			score.Str("special_case", c.Reason)
		}
	} else {
		score.Interface("recomputed", nil).Interface("match", nil)
	}
	score.Interface("oom_score", r.OOMScore)

	group := zerolog.Arr()
	for _, g := range k.Group {
		group.Dict(zerolog.Dict().Uint32("pid", g.Pid).Uint32("tid", g.Tid).Str("comm", g.Comm))
	}

	ev := log.Info().
		Time("time", k.Time).
		Int("schema_version", schemaVersion).
		Uint64("boot_ns", k.BootNs).
		Str("attach", string(k.Attach)).
		Dict("victim", victim).
		Dict("trigger", zerolog.Dict().
			Uint32("pid", k.Trigger.Pid).
			Uint32("tid", k.Trigger.Tid).
			Str("comm", k.Trigger.Comm)).
		Dict("oom", oom).
		Dict("score", score).
		Array("group", group).
		Int("kills", k.Kills()).
		Bool("repeat", k.Repeat).
		Dict("container", containerDict(r)).
		Dict("k8s", k8sDict(r.Container)).
		Dict("enrich_errors", errorsDict(r.Errors))
	if r.Node != nil {
		ev.Dict("node", nodeDict(*r.Node))
	}
	ev.Msg("oom_kill")
	if c := r.Score; c != nil && !c.Match {
		log.Warn().Time("time", k.Time).
			Uint32("pid", v.Pid).
			Int64("kernel", *k.KernelScore).
			Int64("recomputed", c.Recomputed).
			Int64("expected", c.Expected).
			Uint64("rss", v.Pages.RSS()).
			Uint64("swap", v.Pages.Swap).
			Uint64("pgtables", v.Pages.PgTables).
			Int32("oom_score_adj", v.OOMScoreAdj).
			Uint64("totalpages", k.Scope.TotalPages).
			Msg("score_mismatch")
	}
}

func cgroupDict(v tracer.Task, r enrich.Result) *zerolog.Event {
	d := zerolog.Dict().Uint64("id", v.CgroupID).Uint64("dfl_id", v.DflCgroupID)
	if r.VictimPath != "" {
		d.Str("path", r.VictimPath)
	} else {
		d.Interface("path", nil)
	}
	if l := r.Limits; l != nil {
		d.Interface("effective_limit_bytes", l.Effective)
		d.Str("effective_limit_path", l.EffectivePath)
		chain := zerolog.Arr()
		for _, m := range l.Chain {
			chain.Dict(zerolog.Dict().Str("path", m.Path).
				Interface("limit_bytes", m.Limit).
				Interface("high_bytes", m.High).
				Interface("swap_limit_bytes", m.SwapLimit).
				Interface("memsw_limit_bytes", m.MemSwLimit).
				Interface("usage_bytes", m.Usage).
				Interface("max_usage_bytes", m.MaxUsage).
				Bool("removed", m.Removed))
		}
		d.Array("chain", chain)
	} else {
		d.Interface("effective_limit_bytes", nil).Interface("effective_limit_path", nil).Array("chain", zerolog.Arr())
	}
	return d
}

// memcgDict is oom.memcg; id nil when the decision is unknown. Each key is
// written once: strict parsers reject a document that repeats one.
func memcgDict(id *uint64, hit *cgroups.Hit) *zerolog.Event {
	d := zerolog.Dict()
	if id != nil {
		d.Uint64("id", *id)
	} else {
		d.Interface("id", nil)
	}
	if hit != nil {
		return d.Str("path", hit.Path).Interface("limit_bytes", hit.Limit).Str("source", hit.Source)
	}
	return d.Interface("path", nil).Interface("limit_bytes", nil).Interface("source", nil)
}

func containerDict(r enrich.Result) *zerolog.Event {
	c := r.Container
	d := zerolog.Dict()
	optStr(d, "runtime", c.Runtime)
	optStr(d, "id", c.ID)
	optStr(d, "unit", c.Unit)
	if i := r.Docker; i != nil {
		labels := zerolog.Dict()
		keys := slices.Sorted(maps.Keys(i.Labels))
		for n, k := range keys {
			if n == maxLabels {
				labels.Int("oomtrace.truncated_labels", len(keys)-maxLabels)
				break
			}
			labels.Str(bounded(k), bounded(i.Labels[k]))
		}
		return d.Str("name", i.Name).Str("image", i.Image).Str("image_id", i.ImageID).
			Dict("labels", labels).Int64("memory_limit_bytes", i.MemoryLimit)
	}
	return d.Interface("name", nil).Interface("image", nil).Interface("image_id", nil).
		Dict("labels", zerolog.Dict()).Interface("memory_limit_bytes", nil)
}

func k8sDict(c cgroups.Container) *zerolog.Event {
	d := zerolog.Dict()
	optStr(d, "pod_uid", c.PodUID)
	optStr(d, "qos", c.QoS)
	return d
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

// optStr writes s, or null when it is empty (unknown), so every documented
// field is present in every event.
func optStr(d *zerolog.Event, key, s string) {
	if s == "" {
		d.Interface(key, nil)
	} else {
		d.Str(key, s)
	}
}

func errorsDict(errs map[string]string) *zerolog.Event {
	d := zerolog.Dict()
	for _, k := range slices.Sorted(maps.Keys(errs)) {
		d.Str(k, errs[k])
	}
	return d
}

func nodeDict(n node.Context) *zerolog.Event {
	return zerolog.Dict().
		Int("overcommit_memory", n.OvercommitMemory).
		Int("overcommit_ratio", n.OvercommitRatio).
		Int("panic_on_oom", n.PanicOnOOM).
		Bool("oom_kill_allocating_task", n.OOMKillAllocatingTask).
		Bool("oom_dump_tasks", n.OOMDumpTasks).
		Uint64("mem_total_bytes", n.MemTotalBytes).
		Uint64("swap_total_bytes", n.SwapTotalBytes)
}
