// Package commit is the kernel's accounting of committed memory, and which
// of its rules refuses a memory request: mm/util.c's __vm_enough_memory()
// (vm.overcommit_memory's heuristic and strict modes) and mm/mmap.c's
// may_expand_vm() (RLIMIT_AS, RLIMIT_DATA), as in 5.10 to 6.18.
package commit

import (
	"fmt"
	"github.com/oomtrace/oomtrace/kernel/procfs"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// Overcommit modes (vm.overcommit_memory).
const (
	ModeHeuristic = 0 // OVERCOMMIT_GUESS
	ModeAlways    = 1 // OVERCOMMIT_ALWAYS
	ModeNever     = 2 // OVERCOMMIT_NEVER: strict
)

// Accounting is the node's commit accounting, bytes unless named otherwise.
type Accounting struct {
	Mode               int    // vm.overcommit_memory
	Ratio              int    // vm.overcommit_ratio, percent
	Kbytes             uint64 // vm.overcommit_kbytes (used instead of the ratio when non-zero)
	AdminReserveKbytes uint64 // vm.admin_reserve_kbytes
	UserReserveKbytes  uint64 // vm.user_reserve_kbytes
	CommitLimitBytes   uint64 // /proc/meminfo CommitLimit: vm_commit_limit()
	CommittedBytes     uint64 // /proc/meminfo Committed_AS: vm_committed_as
	MemTotalBytes      uint64 // totalram_pages()
	SwapTotalBytes     uint64 // total_swap_pages
}

// ReadAccounting reads it from procRoot ("/proc" except in tests).
func ReadAccounting(procRoot string) (Accounting, error) {
	var a Accounting
	var errs []string
	sysctl := func(name string) uint64 {
		data, err := os.ReadFile(filepath.Join(procRoot, "sys/vm", name))
		if err != nil {
			errs = append(errs, fmt.Sprintf("vm.%s: %v", name, err))
			return 0
		}
		n, err := strconv.ParseUint(strings.TrimSpace(string(data)), 10, 64)
		if err != nil {
			errs = append(errs, fmt.Sprintf("vm.%s: %v", name, err))
		}
		return n
	}
	a.Mode = int(sysctl("overcommit_memory"))
	a.Ratio = int(sysctl("overcommit_ratio"))
	a.Kbytes = sysctl("overcommit_kbytes")
	a.AdminReserveKbytes = sysctl("admin_reserve_kbytes")
	a.UserReserveKbytes = sysctl("user_reserve_kbytes")
	m, err := procfs.ReadMeminfo(procRoot, nil)
	if err != nil {
		errs = append(errs, err.Error())
	}
	a.MemTotalBytes, a.SwapTotalBytes = m["MemTotal"], m["SwapTotal"]
	a.CommitLimitBytes, a.CommittedBytes = m["CommitLimit"], m["Committed_AS"]
	if a.MemTotalBytes == 0 {
		errs = append(errs, "no MemTotal in meminfo")
	}
	if len(errs) > 0 {
		return a, fmt.Errorf("reading commit accounting: %s", strings.Join(errs, "; "))
	}
	return a, nil
}

// Unlimited is RLIM_INFINITY.
const Unlimited = math.MaxUint64

// Limits are a process's soft address-space and data limits, bytes
// (Unlimited for none).
type Limits struct {
	AS, Data uint64
}

// ReadLimits reads pid's soft RLIMIT_AS and RLIMIT_DATA: with prlimit(2),
// else (another user's process without CAP_SYS_RESOURCE, as under the
// hardened systemd unit) from /proc/PID/limits, which anyone may read.
func ReadLimits(pid int) (Limits, error) {
	var as, data unix.Rlimit
	err := unix.Prlimit(pid, unix.RLIMIT_AS, nil, &as)
	if err == nil {
		err = unix.Prlimit(pid, unix.RLIMIT_DATA, nil, &data)
	}
	if err == nil {
		return Limits{AS: as.Cur, Data: data.Cur}, nil
	}
	if err != unix.EPERM {
		return Limits{}, fmt.Errorf("reading the rlimits of %d: %w", pid, err)
	}
	return ReadLimitsFile(filepath.Join("/proc", strconv.Itoa(pid), "limits"))
}

// ReadLimitsFile parses a /proc/PID/limits file.
func ReadLimitsFile(file string) (Limits, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return Limits{}, fmt.Errorf("reading the rlimits: %w", err)
	}
	l := Limits{AS: Unlimited, Data: Unlimited}
	found := 0
	for _, line := range strings.Split(string(data), "\n") {
		var dst *uint64
		switch {
		case strings.HasPrefix(line, "Max address space "):
			dst = &l.AS
		case strings.HasPrefix(line, "Max data size "):
			dst = &l.Data
		default:
			continue
		}
		// "Max data size  <soft>  <hard>  bytes": the soft limit is the
		// third field from the end.
		f := strings.Fields(line)
		if len(f) < 3 {
			return Limits{}, fmt.Errorf("%s: %q", file, line)
		}
		if soft := f[len(f)-3]; soft != "unlimited" {
			v, err := strconv.ParseUint(soft, 10, 64)
			if err != nil {
				return Limits{}, fmt.Errorf("%s: %q: %w", file, line, err)
			}
			*dst = v
		}
		found++
	}
	if found != 2 {
		return Limits{}, fmt.Errorf("%s: no address space or data size limit", file)
	}
	return l, nil
}

// Rule is what refused a request.
type Rule string

const (
	RuleHeuristic  Rule = "heuristic"   // mode 0: one request larger than RAM + swap
	RuleStrict     Rule = "strict"      // mode 2: Committed_AS + request past CommitLimit (less reserves)
	RuleRlimitAS   Rule = "rlimit_as"   // total_vm + request past RLIMIT_AS
	RuleRlimitData Rule = "rlimit_data" // data_vm + request past RLIMIT_DATA
	RuleOther      Rule = "other"       // none of these: a memcg charge, a failed page-table or VMA allocation, unknown
)

// Request is a refused request as the kernel weighed it.
type Request struct {
	// Bytes charged: mmap's length, mremap's growth, brk's growth, a
	// fork's private writable mappings.
	Bytes uint64
	// ForkLike: fork and clone copy mappings, checked against the commit
	// limit but not the rlimits.
	ForkLike bool
	// The caller's mm: total_vm and data_vm, pages.
	TotalVMPages, DataPages uint64
	// Privileged: the caller has CAP_SYS_ADMIN, so the kernel keeps no
	// admin reserve from it.
	Privileged bool
}

// Decision is the rule and the numbers that decided it.
type Decision struct {
	Rule Rule
	// ReserveBytes is what strict mode keeps back from this caller: the
	// admin reserve (unless privileged) and min(total_vm/32, the user
	// reserve). Set in mode 2.
	ReserveBytes uint64
}

// Classify names the rule that refused r, checked in the kernel's order:
// may_expand_vm() before __vm_enough_memory() (mmap_region(), do_brk_flags(),
// mremap's vma_to_resize()); a fork only charges the commit (dup_mmap()).
func Classify(r Request, a Accounting, l Limits, pageSize uint64) Decision {
	pages := (r.Bytes + pageSize - 1) / pageSize
	if !r.ForkLike {
		if l.AS != Unlimited && r.TotalVMPages+pages > l.AS/pageSize {
			return Decision{Rule: RuleRlimitAS}
		}
		if l.Data != Unlimited && r.DataPages+pages > l.Data/pageSize {
			return Decision{Rule: RuleRlimitData}
		}
	}
	switch a.Mode {
	case ModeHeuristic:
		// if (pages > totalram_pages() + total_swap_pages) goto error;
		if pages > a.MemTotalBytes/pageSize+a.SwapTotalBytes/pageSize {
			return Decision{Rule: RuleHeuristic}
		}
	case ModeNever:
		d := Decision{ReserveBytes: Reserve(a, r.TotalVMPages, r.Privileged, pageSize)}
		// The kernel adds the pages first, then refuses unless
		// vm_committed_as < allowed.
		allowed := int64(a.CommitLimitBytes) - int64(d.ReserveBytes)
		if int64(a.CommittedBytes+pages*pageSize) >= allowed {
			d.Rule = RuleStrict
			return d
		}
		d.Rule = RuleOther
		return d
	}
	return Decision{Rule: RuleOther}
}

// Reserve is what __vm_enough_memory() keeps back from a caller in strict
// mode: admin_reserve_kbytes unless it has CAP_SYS_ADMIN, and the smaller of
// total_vm/32 and user_reserve_kbytes.
func Reserve(a Accounting, totalVMPages uint64, privileged bool, pageSize uint64) uint64 {
	var r uint64
	if !privileged {
		r += a.AdminReserveKbytes << 10
	}
	return r + min(totalVMPages/32*pageSize, a.UserReserveKbytes<<10)
}
