package main

import (
	"flag"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/oomtrace/oomtrace/tracer"
	"github.com/rs/zerolog"
)

var errHelp = flag.ErrHelp

type config struct {
	format      string
	logLevel    zerolog.Level
	readyFile   string
	docker      string
	output      string
	metricsAddr string
	queueSize   int
	// riskThreshold is a percentage of the effective limit; 0 turns oom_risk off.
	riskThreshold float64
	riskInterval  time.Duration
	tracer        tracer.Config
}

func parseFlags(args []string) (config, error) {
	var (
		cfg      config
		level    string
		killHook string
		markHook string
	)
	fs := flag.NewFlagSet("oomtrace", flag.ContinueOnError)
	fs.StringVar(&cfg.format, "format", "json", "output format: json (one object per line) or console (for people)")
	fs.StringVar(&level, "log-level", "info", "lowest level printed: debug, info, warn, error")
	fs.StringVar(&cfg.readyFile, "ready-file", "", "write this file once every hook that can attach is attached")
	fs.StringVar(&cfg.output, "output", "", "write events to this file (appending; reopened on SIGHUP) instead of stdout")
	fs.StringVar(&cfg.metricsAddr, "metrics-addr", "127.0.0.1:9655", "serve Prometheus /metrics and /healthz here; empty disables")
	fs.Float64Var(&cfg.riskThreshold, "risk-threshold", 90, "emit oom_risk when a cgroup's working set crosses this percentage of its effective memory limit; 0 disables")
	fs.DurationVar(&cfg.riskInterval, "risk-interval", 5*time.Second, "how often oom_risk scans the memory cgroups where the kernel cannot notify it (cgroup v2, a read-only tree), and on cgroup v1 while a cgroup sits near its limit")
	fs.IntVar(&cfg.queueSize, "queue-size", defaultQueueSize, "kills that may wait for a stalled output before they are dropped (and counted)")
	fs.StringVar(&cfg.docker, "docker", "auto", "Docker metadata: auto (when DOCKER_HOST is set or /var/run/docker.sock exists at startup), on, off")
	fs.Func("ringbuf-size", "ring buffer size in bytes, a power of two (default 262144: about a thousand records)", func(v string) error {
		n, err := strconv.ParseUint(v, 10, 32)
		cfg.tracer.RingBufferSize = uint32(n)
		return err
	})
	fs.StringVar(&killHook, "kill-hook", "auto", "how to hook oom_kill_process(): auto, fentry, kprobe, none")
	fs.StringVar(&markHook, "mark-hook", "auto", "how to hook oom:mark_victim: auto, tp_btf, tracepoint")
	if err := fs.Parse(args); err != nil {
		return cfg, err
	}
	if fs.NArg() > 0 {
		return cfg, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if cfg.format != "json" && cfg.format != "console" {
		return cfg, fmt.Errorf("--format %q: want json or console", cfg.format)
	}
	if cfg.riskThreshold < 0 || cfg.riskThreshold > 100 || cfg.riskInterval < 100*time.Millisecond {
		return cfg, fmt.Errorf("--risk-threshold %v / --risk-interval %v: want 0..100 and at least 100ms", cfg.riskThreshold, cfg.riskInterval)
	}
	if cfg.queueSize < 1 {
		return cfg, fmt.Errorf("--queue-size %d: want at least 1", cfg.queueSize)
	}
	if cfg.docker != "auto" && cfg.docker != "on" && cfg.docker != "off" {
		return cfg, fmt.Errorf("--docker %q: want auto, on or off", cfg.docker)
	}
	lvl, err := zerolog.ParseLevel(level)
	if err != nil || level == "" {
		return cfg, fmt.Errorf("--log-level %q: want debug, info, warn or error", level)
	}
	cfg.logLevel = lvl
	switch k := tracer.KillHook(killHook); k {
	case tracer.KillHookAuto, tracer.KillHookFentry, tracer.KillHookKprobe, tracer.KillHookNone:
		cfg.tracer.KillHook = k
	default:
		return cfg, fmt.Errorf("--kill-hook %q: want auto, fentry, kprobe or none", killHook)
	}
	switch m := tracer.MarkHook(markHook); m {
	case tracer.MarkHookAuto, tracer.MarkHookTpBtf, tracer.MarkHookTracepoint:
		cfg.tracer.MarkHook = m
	default:
		return cfg, fmt.Errorf("--mark-hook %q: want auto, tp_btf or tracepoint", markHook)
	}
	return cfg, nil
}

func newLogger(cfg config, w io.Writer) zerolog.Logger {
	if cfg.format == "console" {
		w = zerolog.ConsoleWriter{Out: w, TimeFormat: "2006-01-02T15:04:05.000Z07:00"}
	}
	return zerolog.New(w).Level(cfg.logLevel)
}
