// Command oomtrace prints one JSON line per OOM kill the kernel performs.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"runtime"
	"syscall"

	"github.com/oomtrace/oomtrace/daemon"
	"github.com/oomtrace/oomtrace/internal/version"
	"github.com/oomtrace/oomtrace/internal/workload"
	"github.com/oomtrace/oomtrace/tracer"
)

func main() {
	// `oomtrace verify` runs its memory hogs as this same binary's
	// explicit workload subcommand.
	workload.MaybeRun()
	if len(os.Args) > 1 {
		switch os.Args[1] {
		case "verify":
			os.Exit(verifyMain(os.Args[2:], os.Stdout))
		case "rank":
			os.Exit(rankMain(os.Args[2:], os.Stdout))
		case "explain":
			os.Exit(explainMain(os.Args[2:], os.Stdin, os.Stdout, os.Stderr))
		}
	}
	cfg, err := parseFlags(os.Args[1:])
	if errors.Is(err, errHelp) {
		os.Exit(0)
	}
	if errors.Is(err, errVersion) {
		fmt.Print(version.Read(tracer.ObjectHash()))
		os.Exit(0)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "oomtrace: %v\n", err)
		os.Exit(2)
	}
	daemonProcs()
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	err = daemon.Run(ctx, cfg, os.Stdout)
	stop()
	if err != nil {
		fmt.Fprintf(os.Stderr, "oomtrace: %v\n", err)
		os.Exit(1)
	}
}

// daemonProcs runs the daemon on one P unless GOMAXPROCS says otherwise. Its
// work is serial (one reader, one writer, waits in the poller), so a second
// P buys nothing but wake-ups: readying the writer woke an idle P's thread,
// which found nothing to do and slept again, on every kill. Measured in an
// OOM storm on 2 vCPUs: 4 context switches per kill instead of 6-7, and
// about a fifth less CPU time per kill.
func daemonProcs() {
	if os.Getenv("GOMAXPROCS") == "" {
		runtime.GOMAXPROCS(1)
	}
}
