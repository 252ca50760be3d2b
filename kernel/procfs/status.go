// Package procfs reads what /proc says of a process, the one parser of it
// that the tracer, verify and rank share.
package procfs

import (
	"bytes"
	"fmt"
	"os"
	"strconv"

	"github.com/oomtrace/oomtrace/internal/kfile"
	"github.com/oomtrace/oomtrace/kernel/mm"
)

// Status is /proc/PID/status, the fields oomtrace reads.
type Status struct {
	Name   string // the comm, as the kernel escapes it there (\n, \\)
	Tgid   uint32
	UID    uint32 // real uid
	CapEff uint64 // effective capabilities
	// Pages are the mm counters (RssAnon, RssFile, RssShmem, VmSwap, VmPTE
	// in kB, the same counters oom_badness() reads), converted to pages.
	Pages mm.Pages
	// HasMM is false for a kernel thread or a zombie: no Rss lines.
	HasMM bool
	// RSSKB and HWMKB are VmRSS and VmHWM (its peak), in kB: the
	// benchmark's memory figures.
	RSSKB, HWMKB uint64
	// CtxtSwitches sums voluntary_ctxt_switches and
	// nonvoluntary_ctxt_switches: a thread's wake-ups, for the benchmark.
	CtxtSwitches uint64
}

var pageKB = uint64(os.Getpagesize()) / 1024

// ParseStatus parses the contents of a /proc/PID/status file.
func ParseStatus(data []byte) Status {
	var s Status
	number := func(v []byte) uint64 {
		f := bytes.Fields(v)
		if len(f) == 0 {
			return 0
		}
		n, _ := strconv.ParseUint(string(f[0]), 10, 64)
		return n
	}
	kb := func(v []byte) uint64 { return number(v) / pageKB }
	for line := range bytes.Lines(data) {
		k, v, _ := bytes.Cut(line, []byte{':'})
		switch string(k) {
		case "Name":
			s.Name = string(bytes.TrimSpace(v))
		case "Tgid":
			n, _ := strconv.ParseUint(string(bytes.TrimSpace(v)), 10, 32)
			s.Tgid = uint32(n)
		case "Uid": // real, effective, saved, fs
			if f := bytes.Fields(v); len(f) > 0 {
				n, _ := strconv.ParseUint(string(f[0]), 10, 32)
				s.UID = uint32(n)
			}
		case "CapEff":
			s.CapEff, _ = strconv.ParseUint(string(bytes.TrimSpace(v)), 16, 64)
		case "RssAnon":
			s.Pages.Anon, s.HasMM = kb(v), true
		case "RssFile":
			s.Pages.File = kb(v)
		case "RssShmem":
			s.Pages.Shmem = kb(v)
		case "VmSwap":
			s.Pages.Swap = kb(v)
		case "VmPTE":
			s.Pages.PgTables = kb(v)
		case "VmRSS":
			s.RSSKB = number(v)
		case "VmHWM":
			s.HWMKB = number(v)
		case "voluntary_ctxt_switches", "nonvoluntary_ctxt_switches":
			s.CtxtSwitches += number(v)
		}
	}
	return s
}

// ReadStatus reads /proc/PID/status; pid 0 is the calling process (self).
func ReadStatus(pid int) (Status, error) {
	path := "/proc/self/status"
	if pid != 0 {
		path = fmt.Sprintf("/proc/%d/status", pid)
	}
	return ReadStatusFile(path)
}

// ReadStatusFile reads a status file by its path: a process's, or one of
// its threads' (/proc/PID/task/TID/status).
func ReadStatusFile(path string) (Status, error) {
	// Raw system calls (see internal/kfile): the tracer reads this in a
	// kill's path, for a victim the record named only by thread id.
	var buf [4096]byte
	data, err := kfile.ReadFile(path, buf[:])
	if err != nil {
		return Status{}, &os.PathError{Op: "read", Path: path, Err: err}
	}
	return ParseStatus(data), nil
}

// Capability bits (linux/capability.h) oomtrace asks about.
const (
	CapSysAdmin    = 21
	CapSysResource = 24
	CapPerfmon     = 38
	CapBPF         = 39
)

// Has reports whether the effective set holds capability bit.
func (s Status) Has(bit uint) bool { return s.CapEff&(1<<bit) != 0 }
