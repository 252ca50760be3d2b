package event

import (
	"time"

	"github.com/rs/zerolog"
)

// AllocRefused is the alloc_refused line: memory requests the kernel
// refused with ENOMEM (fork, clone, mmap, mremap, brk) without an OOM kill,
// at most one line per process and syscall per second.
type AllocRefused struct {
	Time          time.Time `json:"time"`
	SchemaVersion int       `json:"schema_version"`
	BootNs        uint64    `json:"boot_ns"`
	// Repeats is how many refusals this line stands for: this one and
	// those of the same process and syscall since its previous line.
	Repeats      uint64            `json:"repeats"`
	Syscall      string            `json:"syscall"`
	RequestBytes uint64            `json:"request_bytes"`
	Ret          int64             `json:"ret"`
	Process      AllocProcess      `json:"process"`
	Cgroup       AllocCgroup       `json:"cgroup"`
	Container    Container         `json:"container"`
	K8s          K8s               `json:"k8s"`
	Rule         string            `json:"rule"`
	Commit       Commit            `json:"commit"`
	EnrichErrors map[string]string `json:"enrich_errors"`
}

func (AllocRefused) Name() string                            { return "alloc_refused" }
func (a AllocRefused) MarshalZerologObject(e *zerolog.Event) { embed(e, &a) }

// AllocProcess is the process whose request was refused.
type AllocProcess struct {
	Pid         uint32 `json:"pid"`
	Tid         uint32 `json:"tid"`
	Comm        string `json:"comm"`
	UID         uint32 `json:"uid"`
	StartTimeNs uint64 `json:"start_time_ns"`
}

// AllocCgroup is its memory cgroup.
type AllocCgroup struct {
	ID    uint64  `json:"id"`
	DflID uint64  `json:"dfl_id"`
	Path  *string `json:"path"`
}

// Commit are the numbers the rule was decided on, bytes; null when not
// read (or, for the rlimits, unlimited).
type Commit struct {
	Mode           *int    `json:"mode"`
	Ratio          *int    `json:"ratio"`
	Kbytes         *uint64 `json:"kbytes"`
	LimitBytes     *uint64 `json:"limit_bytes"`
	CommittedBytes *uint64 `json:"committed_bytes"`
	ReserveBytes   *uint64 `json:"reserve_bytes"`
	RequestBytes   uint64  `json:"request_bytes"`
	RAMBytes       *uint64 `json:"ram_bytes"`
	SwapBytes      *uint64 `json:"swap_bytes"`
	TotalVMBytes   uint64  `json:"total_vm_bytes"`
	DataBytes      uint64  `json:"data_bytes"`
	RlimitAS       *uint64 `json:"rlimit_as"`
	RlimitData     *uint64 `json:"rlimit_data"`
}
