package main

import (
	"time"

	"github.com/oomtrace/oomtrace/tracer"
	"github.com/rs/zerolog"
)

// schemaVersion changes only when a field changes meaning or goes away;
// added fields keep it. docs/events.md describes version 1.
const schemaVersion = 1

func init() {
	zerolog.TimeFieldFormat = time.RFC3339Nano
}

func logStartup(log zerolog.Logger, h tracer.Hooks) {
	ev := log.Info()
	if h.Attach() == tracer.AttachMarkVictimOnly {
		// Still every kill, but without the kernel's score and the OOM's scope.
		ev = log.Warn()
	}
	refused := zerolog.Dict()
	for hook, why := range h.Refused {
		refused.Str(hook, why)
	}
	ev.Time("time", time.Now()).
		Int("schema_version", schemaVersion).
		Str("kernel", kernelRelease()).
		Str("attach", string(h.Attach())).
		Dict("hooks", zerolog.Dict().
			Str("oom_kill_process", orNone(h.Kill)).
			Str("mark_victim", orNone(h.Mark))).
		Dict("refused", refused).
		Msg("oomtrace_started")
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

// logKill writes one oom_kill event; docs/events.md documents every field.
func logKill(log zerolog.Logger, k tracer.Kill) {
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
		Dict("cgroup", zerolog.Dict().
			Uint64("id", v.CgroupID).
			Uint64("dfl_id", v.DflCgroupID))
	if v.Partial {
		victim.Bool("partial", true)
	}

	oom := zerolog.Dict()
	score := zerolog.Dict()
	if s := k.Scope; s != nil {
		oom.Str("constraint", s.Constraint.String()).
			Uint64("totalpages", s.TotalPages).
			Dict("memcg", zerolog.Dict().Uint64("id", s.MemcgID)).
			Uint32("gfp_mask", s.GFPMask).
			Int32("order", s.Order)
	} else {
		oom.Interface("constraint", nil).
			Interface("totalpages", nil).
			Dict("memcg", zerolog.Dict().Interface("id", nil)).
			Interface("gfp_mask", nil).
			Interface("order", nil)
	}
	if k.KernelScore != nil {
		score.Int64("kernel", *k.KernelScore)
	} else {
		score.Interface("kernel", nil)
	}

	group := zerolog.Arr()
	for _, g := range k.Group {
		group.Dict(zerolog.Dict().Uint32("pid", g.Pid).Uint32("tid", g.Tid).Str("comm", g.Comm))
	}

	log.Info().
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
		Msg("oom_kill")
}
