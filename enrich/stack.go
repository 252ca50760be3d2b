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

func trimTracing(names []string) []string {
	for len(names) > 0 && tracing(names[0]) {
		names = names[1:]
	}
	return names
}

func tracing(name string) bool {
	for _, p := range tracingFrames {
		if strings.HasPrefix(name, p) {
			return true
		}
	}
	return false
}
