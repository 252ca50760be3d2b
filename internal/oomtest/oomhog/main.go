// Command oomhog is the test hog as a standalone static binary, for places
// the test binary cannot go (inside a container image). It allocates memory
// until the OOM killer stops it; configure it with the OOMTRACE_HOG_*
// environment variables of package oomtest (OOMTRACE_HOG_MB, _THREADS, _COMM,
// _ADJ, _PROCS, _HOLD).
package main

import (
	"os"

	"github.com/oomtrace/oomtrace/internal/oomtest"
)

func main() {
	os.Setenv("OOMTRACE_HOG", "1")
	oomtest.MaybeRunHog()
}
