package daemon

import (
	"io"
	"time"

	"github.com/oomtrace/oomtrace/tracer"
	"github.com/rs/zerolog"
)

// Config is what the daemon runs with; cmd/oomtrace fills it from its flags.
type Config struct {
	Format    string // json (one object per line) or console (for people)
	LogLevel  zerolog.Level
	ReadyFile string // written once every hook that can attach is attached
	Docker    string // auto, on or off
	// CRI is the container runtime's CRI endpoint (unix:///path.sock),
	// "auto" to use the default socket found, or "off".
	CRI string
	// K8sEvents posts a Kubernetes Event on the Pod of each kill in a pod
	// the CRI names (in-cluster credentials; NODE_NAME names the node).
	K8sEvents   bool
	Output      string // a file (appended, reopened on SIGHUP); "" for stdout
	MetricsAddr string // Prometheus /metrics and /healthz; "" disables
	QueueSize   int    // kills that may wait for a stalled output
	// RiskThreshold is a percentage of the effective limit; 0 turns oom_risk off.
	RiskThreshold float64
	RiskInterval  time.Duration
	// HistoryLevel is a percentage of the limit above which a cgroup's
	// usage is sampled each second for oom.memcg.history; 0 turns it off,
	// and so does RiskThreshold 0 (the oom_risk watcher finds the cgroups).
	HistoryLevel float64
	// Tracer.Candidates also says how many candidates each event lists.
	Tracer tracer.Config
	// StateDir keeps the ledger of the kernel's OOM counters across
	// restarts (oom_missed, the kills backfilled from the kernel log); ""
	// disables it.
	StateDir string
	// CPUProfile, when set, is a file for a pprof CPU profile of the whole
	// run (what `make bench` reads the per-kill costs from).
	CPUProfile string
}

// newLogger writes to w, as JSON lines or, with --format console, for
// people (colour only when color says so).
func newLogger(cfg Config, w io.Writer, color bool) zerolog.Logger {
	if cfg.Format == "console" {
		w = newConsoleWriter(w, color)
	}
	return zerolog.New(w).Level(cfg.LogLevel)
}
