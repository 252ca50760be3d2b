package oomtest

import (
	"fmt"
	"os"
	"testing"

	"github.com/oomtrace/oomtrace/internal/workload"
)

// The scratch cgroups and hogs are package workload's (verify runs them
// too, in the shipped binary); these names keep the tests' spelling.
type (
	Hierarchy = workload.Hierarchy
	Cgroup    = workload.Cgroup
	Hog       = workload.Hog
	Proc      = workload.Proc
)

var (
	FindHierarchy       = workload.FindHierarchy
	CreateCgroup        = workload.CreateCgroup
	VMStatOOMKills      = workload.VMStatOOMKills
	CanLowerOOMScoreAdj = workload.CanLowerOOMScoreAdj
)

// MaybeRunHog turns a test binary re-executed as a hog (`TEST workload
// FLAGS`, see workload.Hog) into one, and never returns then. Call it first
// thing in TestMain.
func MaybeRunHog() { workload.MaybeRun() }

// NewCgroup creates a scratch memory cgroup with a memory limit (and no
// swap) under parent (nil: the hierarchy's root) and removes it when the
// test ends, killing whatever still runs inside.
func NewCgroup(tb testing.TB, h Hierarchy, parent *Cgroup, name string, limitBytes int64) *Cgroup {
	tb.Helper()
	return removedAtEnd(tb)(workload.CreateCgroup(h, parent, fmt.Sprintf("%s-%d", name, os.Getpid()), limitBytes))
}

// NewCgroupExact creates a scratch cgroup named exactly name (for paths that
// must look like a container runtime's) inside a scratch parent, which keeps
// it out of everything but the test's own tree.
func NewCgroupExact(tb testing.TB, h Hierarchy, parent *Cgroup, name string, limitBytes int64) *Cgroup {
	tb.Helper()
	return removedAtEnd(tb)(workload.CreateCgroupExact(h, parent, name, limitBytes))
}

// removedAtEnd fails the test on a creation error and removes the cgroup
// when the test ends.
func removedAtEnd(tb testing.TB) func(*Cgroup, error) *Cgroup {
	return func(cg *Cgroup, err error) *Cgroup {
		tb.Helper()
		if err != nil {
			tb.Fatal(err)
		}
		tb.Cleanup(func() {
			if err := cg.Remove(); err != nil {
				tb.Errorf("cleaning up: %v", err)
			}
		})
		return cg
	}
}
