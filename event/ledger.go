package event

import (
	"time"

	"github.com/rs/zerolog"
)

// The sources of an oom_kill line.
const (
	SourceBPF  = "bpf"  // traced
	SourceKmsg = "kmsg" // backfilled from the kernel log at startup
)

// Missed is oom_missed: kills the kernel counted while no tracer ran, from
// the growth of its counters since the previous run's last save.
type Missed struct {
	Time          time.Time `json:"time"`
	SchemaVersion int       `json:"schema_version"`
	// Scope is "cgroup" (one memory cgroup's counter) or "machine"
	// (/proc/vmstat: every kill, removed cgroups' too).
	Scope  string        `json:"scope"`
	Kills  uint64        `json:"kills"`
	Cgroup *MissedCgroup `json:"cgroup"` // null for the machine
	Since  time.Time     `json:"since"`
}

// MissedCgroup is the cgroup whose counter grew.
type MissedCgroup struct {
	Path string `json:"path"`
	ID   uint64 `json:"id"`
	// New: not in the saved state (created, or recreated, meanwhile), so
	// every kill it counts is missed.
	New bool `json:"new"`
}

func (Missed) Name() string                            { return "oom_missed" }
func (m Missed) MarshalZerologObject(e *zerolog.Event) { embed(e, &m) }

// The reasons of an oom_missed_unknown line.
const (
	MissedNoState    = "no_state"            // a first start: nothing saved
	MissedOtherBoot  = "other_boot"          // saved in another boot: the counters started again
	MissedCorrupt    = "corrupt_state"       // the state file could not be used
	MissedUnreadable = "counters_unreadable" // /proc/vmstat or the cgroups could not be read now
)

// MissedUnknown is oom_missed_unknown: what the kernel counted while no
// tracer ran cannot be told; a fresh ledger starts.
type MissedUnknown struct {
	Time          time.Time  `json:"time"`
	SchemaVersion int        `json:"schema_version"`
	Reason        string     `json:"reason"`
	Error         string     `json:"error,omitempty"`
	Since         *time.Time `json:"since"` // the saved state's time, when known
}

func (MissedUnknown) Name() string                            { return "oom_missed_unknown" }
func (m MissedUnknown) MarshalZerologObject(e *zerolog.Event) { embed(e, &m) }
