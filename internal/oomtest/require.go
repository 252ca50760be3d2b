package oomtest

import (
	"os"
	"testing"
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
