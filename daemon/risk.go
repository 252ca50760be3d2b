package daemon

import (
	"context"
	"time"

	"github.com/oomtrace/oomtrace/rank"
	"github.com/rs/zerolog"
)

// startRiskWatcher emits an oom_risk warning when a cgroup's working set
// crosses the threshold of its effective limit, once per crossing. It scans
// when the kernel notifies (cgroup v1) or every --risk-interval, and is off
// (no goroutine, no timer) when the threshold is 0. It returns a stop func.
func startRiskWatcher(cfg Config, log zerolog.Logger) func() {
	if cfg.RiskThreshold <= 0 {
		return func() {}
	}
	src, err := rank.HostSource()
	if err != nil {
		log.Warn().Err(err).Time("time", time.Now()).Msg("oom_risk_disabled")
		return func() {}
	}
	w := &rank.Watcher{
		Source:   src,
		Interval: cfg.RiskInterval,
		Detector: rank.Detector{Threshold: cfg.RiskThreshold / 100, Hysteresis: rank.DefaultHysteresis},
		OnRisk:   func(r rank.Risk) { logRisk(log, r) },
		OnError: func(err error) {
			log.Debug().Err(err).Time("time", time.Now()).Msg("oom_risk_scan_error")
		},
		OnPolling: func(reason error) {
			log.Info().Str("reason", reason.Error()).Dur("interval", cfg.RiskInterval).
				Time("time", time.Now()).Msg("oom_risk_polling")
		},
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = w.Run(ctx) }()
	return func() { cancel(); <-done }
}

// logRisk writes one oom_risk event; docs/events.md documents it.
func logRisk(log zerolog.Logger, r rank.Risk) {
	ev := log.Warn().Time("time", time.Now()).
		Int("schema_version", schemaVersion).
		Dict("cgroup", zerolog.Dict().Str("path", r.CgroupPath).Uint64("id", r.CgroupID)).
		Int64("usage_bytes", r.Usage).
		Int64("working_set_bytes", r.WorkingSet).
		Int64("limit_bytes", r.Limit).
		Float64("ratio", r.Ratio).
		Float64("threshold", r.Threshold).
		Uint64("totalpages", r.TotalPages).
		Int("processes", r.Processes).
		Bool("tie", r.Tie)
	if v := r.Victim; v != nil {
		ev.Dict("likely_victim", zerolog.Dict().
			Int("pid", v.Pid).
			Str("comm", v.Comm).
			Str("cgroup", v.Cgroup).
			Int("oom_score_adj", v.OOMScoreAdj).
			Int64("score", v.Score).
			Interface("oom_score", v.OOMScore))
	} else {
		ev.Interface("likely_victim", nil)
	}
	ev.Msg("oom_risk")
}
