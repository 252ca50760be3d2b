package oomtest

import (
	"os"
	"testing"

	"golang.org/x/sys/unix"
)

// RequireRoot skips a test that provokes OOM kills or loads BPF when not root.
func RequireRoot(tb testing.TB) {
	tb.Helper()
	if os.Geteuid() != 0 {
		tb.Skip("needs root: loads BPF programs and creates memory cgroups (run `make test` as root)")
	}
}

// RequireVM skips a test that is only safe inside the disposable test VM
// (a global OOM kills whatever the kernel picks). vmtest sets OOMTRACE_VM=1.
func RequireVM(tb testing.TB) {
	tb.Helper()
	if os.Getenv("OOMTRACE_VM") != "1" {
		tb.Skip("global OOM only inside the test VM (`make vmtest` runs it there)")
	}
}

// MustHierarchy finds the memory cgroup hierarchy or skips the test.
func MustHierarchy(tb testing.TB) Hierarchy {
	tb.Helper()
	h, err := FindHierarchy()
	if err != nil {
		tb.Skipf("needs memory cgroups: %v", err)
	}
	return h
}

// Tracefs makes sure tracefs is mounted at /sys/kernel/tracing, mounting it
// for the test (and unmounting it after) when it is not: the kernel's gfp
// flag names are read there, and classic tracepoints are found there by
// their ids. Needs root.
func Tracefs(tb testing.TB) {
	tb.Helper()
	const dir = "/sys/kernel/tracing"
	if _, err := os.Stat(dir + "/events"); err == nil {
		return
	}
	RequireRoot(tb)
	if err := unix.Mount("nodev", dir, "tracefs", 0, ""); err != nil {
		tb.Fatalf("mounting tracefs at %s: %v", dir, err)
	}
	tb.Cleanup(func() { _ = unix.Unmount(dir, 0) })
}
