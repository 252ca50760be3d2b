package main

import (
	"errors"
	"flag"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/oomtrace/oomtrace/daemon"
	"github.com/oomtrace/oomtrace/enrich/history"
	"github.com/oomtrace/oomtrace/tracer"
	"github.com/rs/zerolog"
)

var errHelp = flag.ErrHelp

// errVersion: --version was given; main prints the version and exits 0.
var errVersion = errors.New("version requested")

func parseFlags(args []string) (daemon.Config, error) {
	var (
		cfg      daemon.Config
		level    string
		killHook string
		markHook string
		version  bool
		cands    int
	)
	fs := flag.NewFlagSet("oomtrace", flag.ContinueOnError)
	fs.StringVar(&cfg.Format, "format", "json", "output format: json (one object per line) or console (for people)")
	fs.StringVar(&level, "log-level", "info", "lowest level printed: debug, info, warn, error")
	fs.StringVar(&cfg.ReadyFile, "ready-file", "", "write this file once every hook that can attach is attached")
	fs.StringVar(&cfg.Output, "output", "", "write events to this file (appending; reopened on SIGHUP) instead of stdout")
	fs.StringVar(&cfg.MetricsAddr, "metrics-addr", "127.0.0.1:9655", "serve Prometheus /metrics and /healthz here; empty disables")
	fs.Float64Var(&cfg.RiskThreshold, "risk-threshold", 90, "emit oom_risk when a cgroup's working set crosses this percentage of its effective memory limit; 0 disables")
	fs.Float64Var(&cfg.HistoryLevel, "history-level", 100*history.DefaultLevel, "sample each second the usage of cgroups above this percentage of their limit, for the last minute of it in each oom_kill (oom.memcg.history); 0 disables, and so does --risk-threshold 0, whose watcher finds them")
	fs.DurationVar(&cfg.RiskInterval, "risk-interval", 5*time.Second, "how often oom_risk scans the memory cgroups where the kernel cannot notify it (cgroup v2, a read-only tree), and on cgroup v1 while a cgroup sits near its limit")
	fs.IntVar(&cfg.QueueSize, "queue-size", daemon.DefaultQueueSize, "kills that may wait for a stalled output before they are dropped (and counted)")
	fs.StringVar(&cfg.CRI, "cri-endpoint", "auto", "the container runtime's CRI socket for Kubernetes pod, namespace and container names (unix:///run/containerd/containerd.sock, unix:///var/run/crio/crio.sock): auto (the first of those that exists at startup), off, or an address")
	fs.BoolVar(&cfg.K8sEvents, "k8s-events", false, "post a Kubernetes Event on the Pod of each OOM kill the CRI names (in-cluster service account; NODE_NAME from the downward API names the node); at most one Event per pod per minute, with a count")
	fs.StringVar(&cfg.Docker, "docker", "auto", "Docker metadata: auto (when DOCKER_HOST is set or /var/run/docker.sock exists at startup), on, off")
	fs.Func("ringbuf-size", "ring buffer size in bytes, a power of two (default 262144: about a thousand records)", func(v string) error {
		n, err := strconv.ParseUint(v, 10, 32)
		cfg.Tracer.RingBufferSize = uint32(n)
		return err
	})
	fs.StringVar(&cfg.StateDir, "state-dir", "/var/lib/oomtrace", "keep the kernel's OOM kill counters here across restarts, to report the kills made while no tracer ran (oom_missed, and oom_kill lines backfilled from the kernel log); empty disables")
	fs.StringVar(&cfg.CPUProfile, "cpu-profile", "", "write a pprof CPU profile of the run to this file (for benchmarks)")
	fs.IntVar(&cands, "candidates", tracer.DefaultCandidates, fmt.Sprintf("list this many of the tasks each OOM decision weighed, the victim first (at most %d); 0 lists none and leaves out_of_memory() and oom_badness() unhooked", tracer.MaxCandidates))
	fs.BoolVar(&cfg.Tracer.AllocRefused, "alloc-refused", false, "trace the memory requests the kernel refuses with ENOMEM (fork, clone, mmap, mremap, brk) as alloc_refused lines, naming the overcommit or rlimit rule that refused them; hooks syscall tracepoints that fire on every such call of the node (cost: docs/benchmarks.md)")
	fs.StringVar(&killHook, "kill-hook", "auto", "how to hook oom_kill_process(): auto, fentry, kprobe, none")
	fs.StringVar(&markHook, "mark-hook", "auto", "how to hook oom:mark_victim: auto, tp_btf, tracepoint")
	fs.BoolVar(&version, "version", false, "print the version, the Go and cilium/ebpf versions and the BPF object's hash, and exit")
	if err := fs.Parse(args); err != nil {
		return cfg, err
	}
	if version {
		return cfg, errVersion
	}
	if fs.NArg() > 0 {
		return cfg, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if cfg.Format != "json" && cfg.Format != "console" {
		return cfg, fmt.Errorf("--format %q: want json or console", cfg.Format)
	}
	if cfg.HistoryLevel < 0 || cfg.HistoryLevel > 100 {
		return cfg, fmt.Errorf("--history-level %v: want 0..100", cfg.HistoryLevel)
	}
	if cfg.RiskThreshold < 0 || cfg.RiskThreshold > 100 || cfg.RiskInterval < 100*time.Millisecond {
		return cfg, fmt.Errorf("--risk-threshold %v / --risk-interval %v: want 0..100 and at least 100ms", cfg.RiskThreshold, cfg.RiskInterval)
	}
	if cfg.QueueSize < 1 {
		return cfg, fmt.Errorf("--queue-size %d: want at least 1", cfg.QueueSize)
	}
	if cfg.CRI != "auto" && cfg.CRI != "off" && !strings.HasPrefix(cfg.CRI, "unix://") {
		return cfg, fmt.Errorf("--cri-endpoint %q: want auto, off or unix:///path/to.sock", cfg.CRI)
	}
	if cfg.Docker != "auto" && cfg.Docker != "on" && cfg.Docker != "off" {
		return cfg, fmt.Errorf("--docker %q: want auto, on or off", cfg.Docker)
	}
	if cands < 0 || cands > tracer.MaxCandidates {
		return cfg, fmt.Errorf("--candidates %d: want 0..%d", cands, tracer.MaxCandidates)
	}
	cfg.Tracer.Candidates = cands
	if cands == 0 {
		cfg.Tracer.Candidates = tracer.CandidatesOff
	}
	lvl, err := zerolog.ParseLevel(level)
	if err != nil || level == "" {
		return cfg, fmt.Errorf("--log-level %q: want debug, info, warn or error", level)
	}
	cfg.LogLevel = lvl
	switch k := tracer.KillHook(killHook); k {
	case tracer.KillHookAuto, tracer.KillHookFentry, tracer.KillHookKprobe, tracer.KillHookNone:
		cfg.Tracer.KillHook = k
	default:
		return cfg, fmt.Errorf("--kill-hook %q: want auto, fentry, kprobe or none", killHook)
	}
	switch m := tracer.MarkHook(markHook); m {
	case tracer.MarkHookAuto, tracer.MarkHookTpBtf, tracer.MarkHookTracepoint:
		cfg.Tracer.MarkHook = m
	default:
		return cfg, fmt.Errorf("--mark-hook %q: want auto, tp_btf or tracepoint", markHook)
	}
	return cfg, nil
}
