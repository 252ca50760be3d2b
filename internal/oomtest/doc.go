// Package oomtest provokes real OOM kills for tests and benchmarks, safely:
// only inside scratch memory cgroups with small limits that it creates and
// always removes, and reads the kernel's own counters to check against.
//
// A test binary that uses it must call MaybeRunHog first thing in TestMain:
// the hog processes are the test binary itself, re-executed.
package oomtest
