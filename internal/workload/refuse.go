package workload

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Refuse describes a process that asks for memory the kernel refuses:
// Calls requests of Bytes each, counting the refusals itself (the kernel
// keeps no count of refused requests).
type Refuse struct {
	Calls int
	// Call is the request: "mmap" (the default; anonymous, private,
	// writable), "mremap" (a page of its own grown to Bytes, free to move)
	// or "brk" (the break raised by Bytes).
	Call  string
	Bytes uint64
	Comm  string
	// RlimitAS, when non-zero, sets the process's RLIMIT_AS first, to
	// this much above its size then (VmSize: the Go runtime reserves
	// address space of its own).
	RlimitAS uint64
	// RlimitData, when non-zero, sets RLIMIT_DATA first, to this much
	// above its VmData then.
	RlimitData uint64
	// ForkMB, when non-zero, makes it allocate and touch this many MiB,
	// then fork Forks times instead of mmapping (a strict-overcommit fork
	// refusal; VM only).
	ForkMB, Forks int
	// Hold keeps the process alive this long after its last call, as a
	// real program would be: what decides a refusal (its rlimits, the
	// node's Committed_AS with its memory) is read when the record arrives.
	Hold time.Duration
}

// RefuseResult is what the process counted.
type RefuseResult struct {
	Pid     int
	Refused int // calls that failed with ENOMEM
	Other   int // calls that succeeded or failed otherwise
}

// Run starts the process as bin's workload subcommand and waits for it.
func (r Refuse) Run(ctx context.Context, bin string) (RefuseResult, error) {
	call := r.Call
	if call == "" {
		call = "mmap"
	}
	args := []string{Command, "-refuse-calls", strconv.Itoa(r.Calls), "-refuse-call", call, "-refuse-bytes", strconv.FormatUint(r.Bytes, 10),
		"-comm", r.Comm, "-rlimit-as", strconv.FormatUint(r.RlimitAS, 10), "-rlimit-data", strconv.FormatUint(r.RlimitData, 10),
		"-fork-mb", strconv.Itoa(r.ForkMB), "-forks", strconv.Itoa(r.Forks), "-refuse-hold", r.Hold.String()}
	cmd := exec.CommandContext(ctx, bin, args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return RefuseResult{}, fmt.Errorf("refuse workload: %w: %s", err, errb.String())
	}
	res := RefuseResult{Pid: cmd.Process.Pid}
	if _, err := fmt.Sscanf(strings.TrimSpace(out.String()), "refused %d other %d", &res.Refused, &res.Other); err != nil {
		return res, fmt.Errorf("refuse workload said %q: %w", out.String(), err)
	}
	return res, nil
}

// refuse is the workload's refusing mode: it prints "refused N other M".
func (c config) refuse() error {
	if c.comm != "" {
		setComm(c.comm)
	}
	if err := limitAbove(unix.RLIMIT_AS, "VmSize", c.rlimitAS); err != nil {
		return err
	}
	if err := limitAbove(unix.RLIMIT_DATA, "VmData", c.rlimitDa); err != nil {
		return err
	}
	refused, other := 0, 0
	count := func(err error) {
		if errors.Is(err, unix.ENOMEM) {
			refused++
		} else {
			other++
		}
	}
	if c.forkMB > 0 {
		mem := make([]byte, c.forkMB<<20)
		for i := 0; i < len(mem); i += 4096 {
			mem[i] = 1
		}
		for i := 0; i < c.forks; i++ {
			// A raw fork: the child exits at once, without running Go.
			pid, _, errno := syscall.RawSyscall(syscall.SYS_CLONE, uintptr(syscall.SIGCHLD), 0, 0)
			if errno != 0 {
				count(errno)
				continue
			}
			if pid == 0 {
				syscall.RawSyscall(syscall.SYS_EXIT_GROUP, 0, 0, 0)
			}
			var ws syscall.WaitStatus
			_, _ = syscall.Wait4(int(pid), &ws, 0, nil)
			other++
		}
		time.Sleep(c.refuseHold)
		fmt.Printf("refused %d other %d\n", refused, other)
		runtime.KeepAlive(mem)
		return nil
	}
	call, ok := refusingCalls[c.refuseCall]
	if !ok {
		return fmt.Errorf("-refuse-call %q: want mmap, mremap or brk", c.refuseCall)
	}
	for i := 0; i < c.refuseCalls; i++ {
		count(call(c.refuseBytes))
	}
	time.Sleep(c.refuseHold)
	fmt.Printf("refused %d other %d\n", refused, other)
	return nil
}

// refusingCalls make one request of n bytes each, undoing it if granted.
var refusingCalls = map[string]func(n uint64) error{
	"mmap": func(n uint64) error {
		b, err := unix.Mmap(-1, 0, int(n), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
		if err == nil {
			_ = unix.Munmap(b)
		}
		return err
	},
	"mremap": func(n uint64) error {
		page, err := unix.Mmap(-1, 0, os.Getpagesize(), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
		if err != nil {
			return fmt.Errorf("mapping the page to grow: %w", err)
		}
		addr, _, errno := unix.Syscall6(unix.SYS_MREMAP, uintptr(unsafe.Pointer(&page[0])), uintptr(len(page)), uintptr(n), unix.MREMAP_MAYMOVE, 0, 0)
		if errno != 0 {
			_ = unix.Munmap(page)
			return errno
		}
		_, _, _ = unix.Syscall(unix.SYS_MUNMAP, addr, uintptr(n), 0)
		return nil
	},
	// brk fails by returning the break it keeps, below the one asked for.
	"brk": func(n uint64) error {
		cur, _, _ := unix.RawSyscall(unix.SYS_BRK, 0, 0, 0)
		want := cur + uintptr(n)
		got, _, _ := unix.RawSyscall(unix.SYS_BRK, want, 0, 0)
		if got < want {
			return unix.ENOMEM
		}
		_, _, _ = unix.RawSyscall(unix.SYS_BRK, cur, 0, 0)
		return nil
	},
}

// limitAbove sets resource's limit to above bytes over the process's size
// now by /proc/self/status's field (the Go runtime maps memory of its
// own); 0 leaves it.
func limitAbove(resource int, field string, above uint64) error {
	if above == 0 {
		return nil
	}
	size, err := statusBytes(field)
	if err != nil {
		return err
	}
	limit := size + above
	if err := unix.Setrlimit(resource, &unix.Rlimit{Cur: limit, Max: limit}); err != nil {
		return fmt.Errorf("setting the limit above %s: %w", field, err)
	}
	return nil
}

// statusBytes is a kB field of /proc/self/status, bytes.
func statusBytes(field string) (uint64, error) {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			kb, err := strconv.ParseUint(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10, err
		}
	}
	return 0, fmt.Errorf("no %s in /proc/self/status", field)
}
