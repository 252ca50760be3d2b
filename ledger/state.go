// Package ledger keeps, across the tracer's restarts, the kernel's own
// counts of OOM kills the last run saw (/proc/vmstat oom_kill, each memory
// cgroup's oom_kill), the boot they belong to and the last kernel log
// record read, so that a start can say what happened while no tracer ran.
package ledger

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// Version is the state file's format.
const Version = 1

// FileName is the state file in the state directory.
const FileName = "ledger.json"

// State is what one run leaves for the next.
type State struct {
	Version int       `json:"version"`
	BootID  string    `json:"boot_id"`
	SavedAt time.Time `json:"saved_at"`
	// VMStatOOMKill is /proc/vmstat oom_kill: every kill on the machine.
	VMStatOOMKill uint64 `json:"vmstat_oom_kill"`
	// Cgroups are the memory cgroups' oom_kill counters, by path.
	Cgroups []Cgroup `json:"cgroups"`
	// KmsgSeq is the last /dev/kmsg record read; nil when the log could
	// not be read.
	KmsgSeq *uint64 `json:"kmsg_seq"`
	// MonotonicNs is CLOCK_MONOTONIC at the save, the kernel log's clock:
	// without KmsgSeq, the records of this boot logged before it were the
	// saving run's to see, not missed.
	MonotonicNs uint64 `json:"monotonic_ns"`
}

// Cgroup is one memory cgroup's count.
type Cgroup struct {
	Path    string `json:"path"`
	ID      uint64 `json:"id"`
	OOMKill uint64 `json:"oom_kill"`
}

// ErrNoState says the directory holds no state yet (a first start).
var ErrNoState = errors.New("no state")

// CorruptError says the state file exists but cannot be used.
type CorruptError struct{ Err error }

func (e *CorruptError) Error() string { return "corrupt state file: " + e.Err.Error() }
func (e *CorruptError) Unwrap() error { return e.Err }

// Load reads the state in dir: ErrNoState when there is none, a
// *CorruptError when it cannot be parsed or has another version.
func Load(dir string) (State, error) {
	data, err := os.ReadFile(filepath.Join(dir, FileName))
	if errors.Is(err, os.ErrNotExist) {
		return State{}, ErrNoState
	}
	if err != nil {
		return State{}, err
	}
	var s State
	if err := json.Unmarshal(data, &s); err != nil {
		return State{}, &CorruptError{err}
	}
	if s.Version != Version {
		return State{}, &CorruptError{fmt.Errorf("version %d, want %d", s.Version, Version)}
	}
	if s.BootID == "" {
		return State{}, &CorruptError{errors.New("no boot_id")}
	}
	return s, nil
}

// Save writes s to dir crash-safe: a temporary file in dir, fsync'd,
// renamed over the state file, and dir fsync'd, so a crash leaves the old
// state or the new one, never a torn file.
func Save(dir string, s State) error {
	s.Version = Version
	data, err := json.Marshal(s)
	if err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, FileName+".tmp*")
	if err != nil {
		return fmt.Errorf("saving the ledger: %w", err)
	}
	tmp := f.Name()
	defer os.Remove(tmp) // after the rename: no such file, harmless
	if _, err := f.Write(append(data, '\n')); err != nil {
		f.Close()
		return fmt.Errorf("saving the ledger: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("saving the ledger: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("saving the ledger: %w", err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, FileName)); err != nil {
		return fmt.Errorf("saving the ledger: %w", err)
	}
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("saving the ledger: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("saving the ledger: %w", err)
	}
	return nil
}
