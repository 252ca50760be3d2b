package main

import (
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// bpftraceScript is the plain way to watch OOM kills: print each
// oom:mark_victim hit. BEGIN fires once the probe is attached: the ready line.
const bpftraceScript = `BEGIN { printf("ready\n"); }
tracepoint:oom:mark_victim { printf("kill %llu %d\n", nsecs, args->pid); }`

// bpftraceProc is a running bpftrace whose kill lines are counted.
type bpftraceProc struct {
	proc
	startup time.Duration
	ready   chan struct{}
}

func bpftracePath() (string, error) {
	path, err := exec.LookPath("bpftrace")
	if err != nil {
		return "", fmt.Errorf("bpftrace not installed (Debian package bpftrace; scripts/install-deps.sh installs it): %w", err)
	}
	return path, nil
}

// ensureTracefs mounts tracefs where bpftrace, and oomtrace's classic
// tracepoints (--alloc-refused), find tracepoints; it is not mounted by
// default on some machines (KERNEL-NOTES).
func ensureTracefs() error {
	if _, err := os.Stat("/sys/kernel/tracing/events"); err == nil {
		return nil
	}
	if err := unix.Mount("nodev", "/sys/kernel/tracing", "tracefs", 0, ""); err != nil {
		return fmt.Errorf("mounting tracefs at /sys/kernel/tracing: %w", err)
	}
	return nil
}

func startBpftrace() (*bpftraceProc, error) {
	path, err := bpftracePath()
	if err != nil {
		return nil, err
	}
	if err := ensureTracefs(); err != nil {
		return nil, err
	}
	cmd := exec.Command(path, "-e", bpftraceScript)
	cmd.Env = append(os.Environ(), "BPFTRACE_NO_CPP_DEMANGLE=1")
	b := &bpftraceProc{ready: make(chan struct{})}
	err = b.start(cmd, func(line []byte) {
		f := strings.Fields(string(line))
		switch {
		case len(f) == 1 && f[0] == "ready":
			b.startup = time.Since(b.started)
			close(b.ready)
		case len(f) == 3 && f[0] == "kill":
			ns, _ := strconv.ParseUint(f[1], 10, 64) // bpftrace's nsecs: CLOCK_MONOTONIC
			b.record(1, time.Duration(clockNs(unix.CLOCK_MONOTONIC)-ns))
		}
	})
	if err != nil {
		return nil, err
	}
	select {
	case <-b.ready:
		return b, nil
	case <-b.done:
		_ = cmd.Wait()
		return nil, fmt.Errorf("bpftrace ended before attaching")
	case <-time.After(60 * time.Second):
		_ = cmd.Process.Kill()
		return nil, fmt.Errorf("bpftrace not ready after 60s")
	}
}

func (b *bpftraceProc) stop() {
	_ = b.cmd.Process.Signal(syscall.SIGINT)
	select {
	case <-b.done:
	case <-time.After(10 * time.Second):
		_ = b.cmd.Process.Kill()
	}
	_ = b.cmd.Wait()
}

func clockNs(clock int32) uint64 {
	var ts unix.Timespec
	_ = unix.ClockGettime(clock, &ts)
	return uint64(ts.Nano())
}
