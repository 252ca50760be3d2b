package daemon

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"runtime/pprof"
	"sync"
	"syscall"
	"time"

	"github.com/oomtrace/oomtrace/enrich"
	"github.com/oomtrace/oomtrace/event"
	"github.com/oomtrace/oomtrace/k8sevents"
	"github.com/oomtrace/oomtrace/metrics"
	"github.com/oomtrace/oomtrace/tracer"
	"github.com/rs/zerolog"
	"golang.org/x/sys/unix"
)

// drainTimeout bounds the wait for queued events at shutdown: a stalled
// output must not keep a SIGTERM'd daemon alive.
const drainTimeout = 3 * time.Second

// Run traces until ctx is done: kernel records through the tracer's join,
// a queue, enrichment, and the event lines. Every error it returns is a
// startup error: once the hooks are attached, problems are logged and the
// tracer keeps going.
func Run(ctx context.Context, cfg Config, stdout io.Writer) error {
	out, err := openOutput(cfg.Output, stdout)
	if err != nil {
		return err
	}
	defer out.Close()
	log := newLogger(cfg, out, colorFor(cfg, stdout))
	if cfg.CPUProfile != "" {
		f, err := os.Create(cfg.CPUProfile)
		if err != nil {
			return fmt.Errorf("--cpu-profile: %w", err)
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return fmt.Errorf("--cpu-profile: %w", err)
		}
		defer pprof.StopCPUProfile()
	}

	// The ledger reads the kernel log before the hooks attach, and the
	// counters after: no kill falls between the two.
	lg := openLedger(cfg.StateDir, log)
	t, err := tracer.Open(cfg.Tracer)
	if err != nil {
		return err
	}
	defer t.Close()
	if lg != nil {
		lg.attached()
	}

	m := metrics.New(500, t.Lost)
	var server *metrics.Server
	if cfg.MetricsAddr != "" {
		if server, err = metrics.Listen(cfg.MetricsAddr, m); err != nil {
			return err
		}
		defer server.Close()
	}
	h := t.Hooks()
	if h.Kill != "" {
		m.Hook("oom_kill_process", h.Kill)
	}
	if h.Mark != "" {
		m.Hook("mark_victim", h.Mark)
	}
	if h.Candidates != "" {
		m.Hook("oom_badness", h.Candidates)
	}
	for _, sc := range h.AllocRefused {
		m.Hook("sys_exit_"+sc, "tracepoint")
	}

	enricher, dockerCache, criCache := newEnricher(cfg, log)
	criAddr := ""
	if criCache != nil {
		criAddr = criCache.Endpoint()
		m.PodAlive(criCache.PodAlive)
		stop := runInBackground(func(ctx context.Context) error { return criCache.Run(ctx) }, func(err error) {
			event.Write(log, zerolog.WarnLevel, event.NewDiagnostic("cri_error", err))
		})
		defer stop()
	}
	poster := newPoster(cfg, log)
	if poster != nil {
		go func() { _ = poster.Run(context.Background()) }()
		defer poster.Close() // after the queue's drain below: the last kills' counts go out too
	}
	logStartup(log, h, enricher, dockerCache != nil, criAddr, poster != nil, serverAddr(server))
	if lg != nil {
		lg.report()
		stopLedger, ledgerDone := make(chan struct{}), make(chan struct{})
		go func() { defer close(ledgerDone); lg.run(stopLedger) }()
		// The last save, after the queue drained and the stopped line.
		defer func() { close(stopLedger); <-ledgerDone }()
	}
	if dockerCache != nil {
		// Run returns early only when Docker cannot be used at all (a
		// DOCKER_HOST it cannot parse): say so once, trace on without it.
		stop := runInBackground(dockerCache.Run, func(err error) {
			event.Write(log, zerolog.WarnLevel, event.NewDiagnostic("docker_error", err))
		})
		defer stop()
	}

	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	stopHup, hupDone := make(chan struct{}), make(chan struct{})
	// Ended before the output is closed: a late SIGHUP must not reopen it.
	defer func() { signal.Stop(hup); close(stopHup); <-hupDone }()
	go func() {
		defer close(hupDone)
		for {
			select {
			case <-hup:
				if err := out.Reopen(); err != nil {
					event.Write(log, zerolog.ErrorLevel, event.NewDiagnostic("output_reopen_error", err))
				}
			case <-stopHup:
				return
			}
		}
	}()

	// Loading parsed the kernel's BTF (megabytes) and the first cgroup scan
	// allocated; none of it is needed while tracing. Hand it back, so the
	// daemon idles small for months.
	debug.FreeOSMemory()

	w := &writer{log: log, enricher: enricher, metrics: m, out: out, noKills: newNoKills(), poster: poster,
		classifier: newClassifier(), ledger: lg}
	w.allocs = newAllocRefusals(func(k allocKey) (uint64, bool) { return t.AllocCount(k.pid, k.startTime, k.syscall) },
		func(r refusal, n uint64) { m.AllocRefused(string(r.Syscall), string(r.decision.Rule), n) })
	p := startPipeline(cfg.QueueSize, stages{
		handle: w.handle,
		wake:   func() time.Time { return earliest(w.noKills.next(), w.allocs.next()) },
		tick: func(now time.Time) {
			w.writeNoKills(w.noKills.due(now))
			w.writeAllocs(w.allocs.due(now))
		},
		end: func() {
			w.writeNoKills(w.noKills.all(time.Now()))
			w.writeAllocs(w.allocs.all(time.Now()))
		},
	})
	w.dropped = &p.dropped
	// /healthz turns ready before the ready file is written: whoever waits
	// for the file may ask /healthz at once (the deploy tests' seccomp run
	// got a 503 in that gap under load).
	if server != nil {
		server.SetReady(true)
	}
	if cfg.ReadyFile != "" {
		if err := os.WriteFile(cfg.ReadyFile, []byte(fmt.Sprintf("%d\n", os.Getpid())), 0o644); err != nil {
			return fmt.Errorf("writing the ready file: %w", err)
		}
		defer os.Remove(cfg.ReadyFile)
	}
	stopSymbols, symbolsBuilt := startSymbolIndex(enricher, cfg.StateDir, log)
	defer stopSymbols()
	stopRisk := startRiskWatcher(cfg, log, enricher.History(), symbolsBuilt)
	defer stopRisk()
	t.OnNoKill(func(n tracer.NoKill) { p.push(item{noKill: &n}) })
	t.OnAllocRefused(func(a tracer.AllocRefused) { p.push(item{alloc: &a}) })
	err = t.Run(ctx, func(k tracer.Kill) {
		enricher.KeepCgroups(k)
		m.Latency(metrics.StageQueued, k.Age())
		p.push(item{kill: k})
	},
		func(err error) { event.Write(log, zerolog.ErrorLevel, event.NewDiagnostic("record_error", err)) })
	if server != nil {
		server.SetReady(false)
	}
	p.closeWithin(drainTimeout)
	w.reportDrops()
	logStopped(log, t, p, w)
	return err
}

// runInBackground runs a metadata cache until the returned stop is called
// (which waits for it). An error it returns before that, it cannot run at
// all: failed hears of it once, and the daemon goes on without it.
func runInBackground(run func(context.Context) error, failed func(error)) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := run(ctx); err != nil && ctx.Err() == nil {
			failed(err)
		}
	}()
	return func() { cancel(); <-done }
}

// writer enriches and writes each kill, on the pipeline's goroutine.
type writer struct {
	log      zerolog.Logger
	enricher *enrich.Enricher
	metrics  *metrics.Metrics
	out      *output
	dropped  interface{ Load() uint64 }
	// reportMu guards reported: the writer's goroutine reports drops, and
	// so does shutdown, while a writer stalled past the drain may still run.
	reportMu  sync.Mutex
	reported  uint64 // drops already reported
	outFailed uint64 // output failures already counted
	noKills   *noKills
	poster    *k8sevents.Poster // nil: no Kubernetes Events
	// allocs aggregates alloc_refused lines; classifier names their rule.
	allocs     *allocRefusals
	classifier *classifier
	ledger     *keeper // nil: no --state-dir
}

func (w *writer) handle(it item) {
	if n := it.noKill; n != nil {
		w.metrics.NoKill(n.Scope.Constraint.String(), 1)
		if l, ok := w.noKills.add(*n, time.Now()); ok {
			w.writeNoKills([]noKillLine{l})
		}
		return
	}
	if a := it.alloc; a != nil {
		w.handleAlloc(*a)
		return
	}
	w.write(it.kill)
	if w.ledger != nil {
		w.ledger.killed()
	}
}

func (w *writer) writeNoKills(lines []noKillLine) {
	for _, l := range lines {
		event.Write(w.log, zerolog.WarnLevel, noKillEvent(l, w.enricher.EnrichNoKill(l.NoKill)))
	}
}

func (w *writer) write(k tracer.Kill) {
	w.reportDrops()
	// The writer's context is not the run's: kills queued at shutdown still
	// get their bounded Docker lookup.
	r := w.enricher.Enrich(context.Background(), k)
	constraint := "unknown"
	if k.Scope != nil {
		constraint = k.Scope.Constraint.String()
	}
	name := ""
	if r.Docker != nil {
		name = r.Docker.Name
	} else if r.Container.ID != "" {
		name = r.Container.ID[:12]
	}
	w.metrics.Kill(constraint, name, r.Container.PodUID, k.Kills())
	if i := r.CRI; i != nil {
		w.metrics.PodKill(metrics.Pod{Namespace: i.Namespace, Name: i.Pod, Container: i.Name, Runtime: i.Runtime, UID: i.PodUID}, k.Kills())
	}
	for source := range r.Errors {
		w.metrics.EnrichError(source)
	}
	if r.Score != nil && !r.Score.Match {
		w.metrics.ScoreMismatch()
	}
	logKill(w.log, k, r)
	if w.poster != nil {
		if info, ok := killInfo(k, r); ok {
			w.poster.Kill(info)
		}
	}
	w.metrics.Latency(metrics.StageWritten, k.Age())
	if f := w.out.failures.Load(); f > w.outFailed {
		w.metrics.Lost(metrics.StageOutput, f-w.outFailed)
		w.outFailed = f
	}
}

// reportDrops says, as soon as output flows again, how many events the full
// queue dropped since the last report.
func (w *writer) reportDrops() {
	if w.dropped == nil {
		return
	}
	w.reportMu.Lock()
	defer w.reportMu.Unlock()
	if d := w.dropped.Load(); d > w.reported {
		w.metrics.Lost(metrics.StageQueue, d-w.reported)
		event.Write(w.log, zerolog.WarnLevel, event.EventsDropped{Time: time.Now(), Dropped: d - w.reported, DroppedTotal: d})
		w.reported = d
	}
}

func logStopped(log zerolog.Logger, t *tracer.Tracer, p *pipeline, w *writer) {
	lost, lostErr := t.Lost()
	if lostErr != nil {
		event.Write(log, zerolog.ErrorLevel, event.NewDiagnostic("stats_error", lostErr))
	}
	s := t.Stats()
	event.Write(log, zerolog.InfoLevel, event.Stopped{
		Time: time.Now(), Kills: s.Kills, Decisions: s.Decisions, ShortcutMarks: s.ShortcutMarks,
		SkippedExiting: s.SkippedExiting, RecordsLost: lost, QueueDropped: p.dropped.Load(),
		OutputFailures: w.out.failures.Load(), ScoreMismatches: w.enricher.Stats.ScoreMismatches.Load(),
		EnrichErrors: w.enricher.Stats.Errors.Load(),
	})
}

func serverAddr(s *metrics.Server) string {
	if s == nil {
		return ""
	}
	return s.Addr()
}

func kernelRelease() string {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return "unknown"
	}
	return unix.ByteSliceToString(u.Release[:])
}

// earliest is the earlier of two wake times, zero meaning none.
func earliest(a, b time.Time) time.Time {
	if a.IsZero() || (!b.IsZero() && b.Before(a)) {
		return b
	}
	return a
}
