// Package integration holds the tests that provoke real OOM kills in scratch
// memory cgroups and check what oomtrace reports against the kernel's own
// counters and log. They need root and a kernel with BTF. `make vmtest` runs
// this package's test binary inside qemu on Debian's 6.1 and 6.12 kernels,
// once per attach mode (OOMTRACE_TEST_KILL_HOOK) and with global OOMs
// allowed (OOMTRACE_VM=1).
package integration
