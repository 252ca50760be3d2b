package daemon

import (
	"os"
	"runtime/debug"

	"github.com/oomtrace/oomtrace/enrich"
	"github.com/oomtrace/oomtrace/event"
	"github.com/oomtrace/oomtrace/kernel/kallsyms"
	"github.com/rs/zerolog"
)

// startSymbolIndex builds, once the daemon is ready, the index that names
// each kill's kernel stack (trigger.kernel_stack): one pass over
// /proc/kallsyms, some 100 ms of CPU that no kill should wait for. It goes
// into the state directory, else the temporary one, as an unlinked file.
// Kills before it is done name their stacks by a pass over the file each.
// built is closed once the build is over; stop waits for it and closes the
// index.
func startSymbolIndex(e *enrich.Enricher, stateDir string, log zerolog.Logger) (stop func(), built <-chan struct{}) {
	dir := ""
	if fi, err := os.Stat(stateDir); stateDir != "" && err == nil && fi.IsDir() {
		dir = stateDir
	}
	done, over := make(chan *kallsyms.Index, 1), make(chan struct{})
	go func() {
		defer close(over)
		x, err := kallsyms.BuildIndex("", "", dir)
		if err != nil {
			event.Write(log, zerolog.WarnLevel, event.NewDiagnostic("kallsyms_unavailable", err))
		} else {
			e.UseSymbolIndex(x)
		}
		// The build's sorting buffers are megabytes the daemon no longer needs.
		debug.FreeOSMemory()
		done <- x
	}()
	return func() {
		if x := <-done; x != nil {
			x.Close()
		}
	}, over
}
