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

	logStartup(log, t.Hooks())
	if cfg.readyFile != "" {
		if err := os.WriteFile(cfg.readyFile, []byte(fmt.Sprintf("%d\n", os.Getpid())), 0o644); err != nil {
			return fmt.Errorf("writing the ready file: %w", err)
		}
		defer os.Remove(cfg.readyFile)
	}

	p := startPipeline(func(k tracer.Kill) { logKill(log, k) })
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
