package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/oomtrace/oomtrace/tracer"
	"github.com/oomtrace/oomtrace/verify"
)

// verifyMain runs `oomtrace verify`: exit 0 when every applicable scenario
// passed, 1 on any mismatch, 2 when the suite could not run.
func verifyMain(args []string, stdout io.Writer) int {
	fs := flag.NewFlagSet("oomtrace verify", flag.ContinueOnError)
	asJSON := fs.Bool("json", false, "print the results as one JSON document")
	only := fs.String("only", "", "comma-separated scenario names to run (default: all)")
	killHook := fs.String("kill-hook", "auto", "how to hook oom_kill_process(): auto, fentry, kprobe, none")
	globalOOM := fs.Bool("global-oom", false, "also run the scenarios that run the whole machine out of memory (the kernel may kill any process: only on a disposable machine)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	opts := verify.Options{Tracer: tracer.Config{KillHook: tracer.KillHook(*killHook)}, GlobalOOM: *globalOOM}
	if *only != "" {
		opts.Only = strings.Split(*only, ",")
	}
	if !*asJSON {
		opts.Progress = func(r verify.Result) {
			fmt.Fprintf(os.Stderr, "%-32s %s\n", r.Scenario, r.Verdict)
		}
	}
	results, err := verify.Run(ctx, opts)
	if *asJSON {
		_ = verify.WriteJSON(stdout, results)
	} else if len(results) > 0 {
		fmt.Fprintln(stdout)
		_ = verify.WriteTable(stdout, results)
	}
	switch {
	case err != nil:
		fmt.Fprintf(os.Stderr, "oomtrace verify: %v\n", err)
		return 2
	case verify.Failed(results):
		return 1
	}
	return 0
}
