package daemon

import (
	"context"
	"sync"
	"time"

	"github.com/oomtrace/oomtrace/enrich/history"
	"github.com/oomtrace/oomtrace/event"
	"github.com/oomtrace/oomtrace/rank"
	"github.com/rs/zerolog"
)

// startRiskWatcher emits an oom_risk warning when a cgroup's working set
// crosses the threshold of its effective limit, once per crossing. It scans
// when the kernel notifies (cgroup v1) or every --risk-interval, and is off
// (no goroutine, no timer) when the threshold is 0. It returns a stop func.
//
// With hist, it also hands over after each scan the cgroups above
// cfg.HistoryLevel, which hist samples while there are any.
//
// It starts scanning once after is closed: the kallsyms index's build
// (some 150 ms of CPU and its garbage) slowed the first scans, and their
// pace (50 times a scan's length) put the settling scan seconds later,
// where it woke an otherwise idle daemon.
func startRiskWatcher(cfg Config, log zerolog.Logger, hist *history.Recorder, after <-chan struct{}) func() {
	if cfg.RiskThreshold <= 0 {
		return func() {}
	}
	src, err := rank.HostSource()
	if err != nil {
		event.Write(log, zerolog.WarnLevel, event.NewDiagnostic("oom_risk_disabled", err))
		return func() {}
	}
	w := &rank.Watcher{
		Source:   src,
		Interval: cfg.RiskInterval,
		Detector: rank.Detector{Threshold: cfg.RiskThreshold / 100, Hysteresis: rank.DefaultHysteresis},
		OnRisk:   func(r rank.Risk) { logRisk(log, r) },
		OnError: func(err error) {
			event.Write(log, zerolog.DebugLevel, event.NewDiagnostic("oom_risk_scan_error", err))
		},
		OnPolling: func(reason error) {
			event.Write(log, zerolog.InfoLevel, event.RiskPolling{
				Time: time.Now(), Reason: reason.Error(), Interval: float64(cfg.RiskInterval) / float64(time.Millisecond),
			})
		},
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	if hist != nil {
		w.Sampling, w.OnHot = cfg.HistoryLevel/100, hist.SetHot
		wg.Go(func() { hist.Run(ctx) })
	}
	wg.Go(func() {
		select {
		case <-after:
		case <-ctx.Done():
			return
		}
		_ = w.Run(ctx)
	})
	return func() { cancel(); wg.Wait() }
}

// logRisk writes one oom_risk event; docs/events.md documents it.
func logRisk(log zerolog.Logger, r rank.Risk) {
	ev := event.Risk{
		Time:          time.Now(),
		SchemaVersion: event.SchemaVersion,
		Cgroup:        event.RiskCgroup{Path: r.CgroupPath, ID: r.CgroupID},
		UsageBytes:    r.Usage, WorkingSetBytes: r.WorkingSet, LimitBytes: r.Limit,
		Ratio: r.Ratio, Threshold: r.Threshold, TotalPages: r.TotalPages, Processes: r.Processes, Tie: r.Tie,
	}
	if v := r.Victim; v != nil {
		ev.LikelyVictim = &event.LikelyVictim{Pid: v.Pid, Comm: v.Comm, Cgroup: v.Cgroup, OOMScoreAdj: v.OOMScoreAdj, Score: v.Score, OOMScore: v.OOMScore}
	}
	event.Write(log, zerolog.WarnLevel, ev)
}
