package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/oomtrace/oomtrace/tracer"
	"golang.org/x/sys/unix"
)

// run traces until ctx is done. Every error it returns is a startup error:
// once the hooks are attached, problems are logged and the tracer keeps going.
func run(ctx context.Context, cfg config, out io.Writer) error {
	log := newLogger(cfg, out)
	t, err := tracer.Open(cfg.tracer)
	if err != nil {
		return err
	}
	defer t.Close()

	enricher, dockerCache := newEnricher(cfg, log)
	logStartup(log, t.Hooks(), enricher, dockerCache != nil)
	if dockerCache != nil {
		dctx, stopDocker := context.WithCancel(context.Background())
		dockerDone := make(chan struct{})
		go func() { defer close(dockerDone); _ = dockerCache.Run(dctx) }()
		defer func() { stopDocker(); <-dockerDone }()
	}
	if cfg.readyFile != "" {
		if err := os.WriteFile(cfg.readyFile, []byte(fmt.Sprintf("%d\n", os.Getpid())), 0o644); err != nil {
			return fmt.Errorf("writing the ready file: %w", err)
		}
		defer os.Remove(cfg.readyFile)
	}

	p := startPipeline(func(k tracer.Kill) {
		// The writer's context is not ctx: kills queued at shutdown still
		// get their bounded Docker lookup.
		logKill(log, k, enricher.Enrich(context.Background(), k))
	})
	err = t.Run(ctx, p.push,
		func(err error) { log.Error().Err(err).Time("time", time.Now()).Msg("record_error") })
	p.close()
	lost, lostErr := t.Lost()
	if lostErr != nil {
		log.Error().Err(lostErr).Msg("stats_error")
	}
	s := t.Stats()
	log.Info().Time("time", time.Now()).
		Uint64("kills", s.Kills).
		Uint64("decisions", s.Decisions).
		Uint64("shortcut_marks", s.ShortcutMarks).
		Uint64("skipped_exiting", s.SkippedExiting).
		Uint64("records_lost", lost).
		Uint64("queue_dropped", p.dropped.Load()).
		Uint64("score_mismatches", enricher.Stats.ScoreMismatches.Load()).
		Uint64("enrich_errors", enricher.Stats.Errors.Load()).
		Msg("oomtrace_stopped")
	return err
}

func kernelRelease() string {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return "unknown"
	}
	return unix.ByteSliceToString(u.Release[:])
}
