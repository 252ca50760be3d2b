package enrich

import (
	"errors"
	"strings"

	"github.com/oomtrace/oomtrace/kernel/kallsyms"
	"github.com/oomtrace/oomtrace/tracer"
)

// tracingFrames are the prefixes of the frames oomtrace's own hooks add on
// top of the kernel's path (the BPF program, its trampoline or kprobe, the
// tracepoint's glue): dropped from the top of a stack, never from inside.
var tracingFrames = []string{
	"bpf_", "__bpf_", "perf_trace_", "trace_event_raw_event_", "__traceiter_", "trace_call_bpf",
	"kprobe_", "kretprobe_", "__kretprobe_", "aggr_pre_handler", "pre_handler_kretprobe", "opt_pre_handler",
	"optimized_callback", "arch_rethook", "rethook_", "ftrace_", "0x", // unnamed: a BPF program without kallsyms
}

func (e *Enricher) kernelStack(st *tracer.KernelStack) ([]string, error) {
	return NameStack(&e.symbols, st)
}

// NameStack names a kernel stack, innermost first, from the hooked
// function or tracepoint down; nil with an error when it cannot.
func NameStack(symbols *kallsyms.Symbolizer, st *tracer.KernelStack) ([]string, error) {
	if st == nil {
		return nil, errors.New("not taken: its record was lost")
	}
	if st.Err != "" {
		return nil, errors.New(st.Err)
	}
	names, err := symbols.Names(st.IPs)
	if err != nil {
		return nil, err
	}
	return trimTracing(names), nil
}

// trimTracing drops what the hooks add to the kernel's own path:
//   - the frames of the hook itself, at the top;
//   - a repeat of the top frame: a tracepoint's registers are taken in the
//     function that fired it, whose return address into itself follows;
//   - an fexit hook's trampoline, which calls the function it hooks: the
//     function shows above it (its body) and below it (its patched entry).
func trimTracing(names []string) []string {
	for len(names) > 0 && tracing(names[0]) {
		names = names[1:]
	}
	if len(names) > 1 && names[0] == names[1] {
		names = names[1:]
	}
	out := make([]string, 0, len(names))
	for i := 0; i < len(names); i++ {
		repeat := i+1 < len(names) && len(out) > 0 && names[i+1] == out[len(out)-1]
		if strings.HasPrefix(names[i], "bpf_trampoline_") {
			if repeat {
				i++
			}
			continue
		}
		// The index of /proc/kallsyms leaves a trampoline unnamed (it is
		// outside the kernel's and the modules' text): an unnamed frame
		// between two of one function is that trampoline. Another stays.
		if strings.HasPrefix(names[i], "0x") && repeat {
			i++
			continue
		}
		out = append(out, names[i])
	}
	return out
}

func tracing(name string) bool {
	for _, p := range tracingFrames {
		if strings.HasPrefix(name, p) {
			return true
		}
	}
	return false
}

// UseSymbolIndex names kernel stacks from x from now on (see
// kallsyms.Symbolizer.UseIndex).
func (e *Enricher) UseSymbolIndex(x *kallsyms.Index) { e.symbols.UseIndex(x) }
