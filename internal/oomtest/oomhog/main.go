// Command oomhog is the test hog as a standalone static binary, for places
// the test binary cannot go (inside a container image). It allocates memory
// until the OOM killer stops it; its flags are package workload's (-mb,
// -threads, -comm, -adj, -procs, -hold, ...).
package main

import (
	"os"

	"github.com/oomtrace/oomtrace/internal/workload"
)

func main() { os.Exit(workload.Main(os.Args[1:])) }
