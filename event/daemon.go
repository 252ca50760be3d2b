package event

import (
	"time"

	"github.com/rs/zerolog"
)

// Started is oomtrace_started: once, when every hook that can attach is attached.
type Started struct {
	Time          time.Time         `json:"time"`
	SchemaVersion int               `json:"schema_version"`
	Kernel        string            `json:"kernel"`
	Attach        string            `json:"attach"`
	Hooks         Hooks             `json:"hooks"`
	Refused       map[string]string `json:"refused"`
	Docker        bool              `json:"docker"`
	CRIEndpoint   string            `json:"cri_endpoint"`
	K8sEvents     bool              `json:"k8s_events"`
	MetricsAddr   string            `json:"metrics_addr"`
	MemoryCgroups *MemoryCgroups    `json:"memory_cgroups"`
	Node          *Node             `json:"node,omitempty"` // absent when /proc/sys/vm could not be read
}

func (Started) Name() string                            { return "oomtrace_started" }
func (s Started) MarshalZerologObject(e *zerolog.Event) { embed(e, &s) }

// Hooks says what is attached.
type Hooks struct {
	OOMKillProcess   string `json:"oom_kill_process"`
	MarkVictim       string `json:"mark_victim"`
	MarkVictimLayout string `json:"mark_victim_layout"`
	SignalGenerate   string `json:"signal_generate"`
	Candidates       string `json:"candidates"`
	// AllocRefused lists the syscalls whose refused requests are traced.
	AllocRefused []string `json:"alloc_refused"`
}

// MemoryCgroups is where the memory controller's hierarchy is.
type MemoryCgroups struct {
	Root string `json:"root"`
	V2   bool   `json:"v2"`
}

// Stopped is oomtrace_stopped: once, at SIGINT/SIGTERM.
type Stopped struct {
	Time            time.Time `json:"time"`
	Kills           uint64    `json:"kills"`
	Decisions       uint64    `json:"decisions"`
	ShortcutMarks   uint64    `json:"shortcut_marks"`
	SkippedExiting  uint64    `json:"skipped_exiting"`
	RecordsLost     uint64    `json:"records_lost"`
	QueueDropped    uint64    `json:"queue_dropped"`
	OutputFailures  uint64    `json:"output_failures"`
	ScoreMismatches uint64    `json:"score_mismatches"`
	EnrichErrors    uint64    `json:"enrich_errors"`
}

func (Stopped) Name() string                            { return "oomtrace_stopped" }
func (s Stopped) MarshalZerologObject(e *zerolog.Event) { embed(e, &s) }

// Risk is oom_risk: a cgroup nearing its limit.
type Risk struct {
	Time            time.Time     `json:"time"`
	SchemaVersion   int           `json:"schema_version"`
	Cgroup          RiskCgroup    `json:"cgroup"`
	UsageBytes      int64         `json:"usage_bytes"`
	WorkingSetBytes int64         `json:"working_set_bytes"`
	LimitBytes      int64         `json:"limit_bytes"`
	Ratio           float64       `json:"ratio"`
	Threshold       float64       `json:"threshold"`
	TotalPages      uint64        `json:"totalpages"`
	Processes       int           `json:"processes"`
	Tie             bool          `json:"tie"`
	LikelyVictim    *LikelyVictim `json:"likely_victim"`
}

func (Risk) Name() string                            { return "oom_risk" }
func (r Risk) MarshalZerologObject(e *zerolog.Event) { embed(e, &r) }

// RiskCgroup names the cgroup at risk.
type RiskCgroup struct {
	Path string `json:"path"`
	ID   uint64 `json:"id"`
}

// LikelyVictim is who an OOM there would kill now.
type LikelyVictim struct {
	Pid         int    `json:"pid"`
	Comm        string `json:"comm"`
	Cgroup      string `json:"cgroup"`
	OOMScoreAdj int    `json:"oom_score_adj"`
	Score       int64  `json:"score"`
	OOMScore    *int64 `json:"oom_score"`
}

// RiskPolling says once why oom_risk polls instead of waiting for the kernel.
type RiskPolling struct {
	Time     time.Time `json:"time"`
	Reason   string    `json:"reason"`
	Interval float64   `json:"interval"` // milliseconds
}

func (RiskPolling) Name() string                            { return "oom_risk_polling" }
func (p RiskPolling) MarshalZerologObject(e *zerolog.Event) { embed(e, &p) }

// EventsDropped says how many kills the full queue dropped since the last one.
type EventsDropped struct {
	Time         time.Time `json:"time"`
	Dropped      uint64    `json:"dropped"`
	DroppedTotal uint64    `json:"dropped_total"`
}

func (EventsDropped) Name() string                            { return "events_dropped" }
func (d EventsDropped) MarshalZerologObject(e *zerolog.Event) { embed(e, &d) }

// Diagnostic is a problem the daemon goes on after: the message names it
// (record_error, output_reopen_error, docker_error, ...; docs/events.md lists
// them), Error says what went wrong.
type Diagnostic struct {
	Message string    `json:"-"`
	Time    time.Time `json:"time"`
	Error   string    `json:"error"`
}

// Diagnostics are the messages a Diagnostic may carry.
var Diagnostics = []string{
	"record_error", "output_reopen_error", "docker_error", "no_memory_cgroups",
	"cgroup_scan_error", "kallsyms_unavailable", "oom_risk_disabled", "oom_risk_scan_error", "stats_error", "cri_error", "k8s_events_error",
	"state_dir_error", "kmsg_unavailable",
}

// NewDiagnostic is the diagnostic line for err.
func NewDiagnostic(message string, err error) Diagnostic {
	return Diagnostic{Message: message, Time: time.Now(), Error: err.Error()}
}

func (d Diagnostic) Name() string                          { return d.Message }
func (d Diagnostic) MarshalZerologObject(e *zerolog.Event) { embed(e, &d) }
