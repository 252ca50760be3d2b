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

	"golang.org/x/sys/unix"
)

// Refuse describes a process that asks for memory the kernel refuses: n
// anonymous private writable mmaps of Bytes each, counting the ENOMEMs
// itself (the kernel keeps no count of refused requests).
type Refuse struct {
	Mmaps int
	Bytes uint64
	Comm  string
	// RlimitAS, when non-zero, sets the process's RLIMIT_AS first, to
	// this much above its size then (VmSize: the Go runtime reserves
	// address space of its own).
	RlimitAS uint64
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
	args := []string{Command, "-refuse-mmaps", strconv.Itoa(r.Mmaps), "-refuse-bytes", strconv.FormatUint(r.Bytes, 10),
		"-comm", r.Comm, "-rlimit-as", strconv.FormatUint(r.RlimitAS, 10),
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
	if c.rlimitAS != 0 {
		size, err := vmSize()
		if err != nil {
			return err
		}
		limit := size + c.rlimitAS
		if err := unix.Setrlimit(unix.RLIMIT_AS, &unix.Rlimit{Cur: limit, Max: limit}); err != nil {
			return fmt.Errorf("setting RLIMIT_AS: %w", err)
		}
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
	for i := 0; i < c.refuseMmaps; i++ {
		b, err := unix.Mmap(-1, 0, int(c.refuseBytes), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
		if err == nil {
			_ = unix.Munmap(b)
		}
		count(err)
	}
	time.Sleep(c.refuseHold)
	fmt.Printf("refused %d other %d\n", refused, other)
	return nil
}

// vmSize is this process's mapped size, bytes (/proc/self/status VmSize).
func vmSize() (uint64, error) {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "VmSize:"); ok {
			kb, err := strconv.ParseUint(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10, err
		}
	}
	return 0, fmt.Errorf("no VmSize in /proc/self/status")
}
