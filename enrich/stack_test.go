package enrich

import (
	"slices"
	"testing"
)

// The hooks' own frames are dropped from the top, never from inside.
func TestTrimTracing(t *testing.T) {
	got := trimTracing([]string{"bpf_prog_6deef7357e7b4530_tp_btf_mark_victim", "bpf_trace_run1", "__bpf_trace_mark_victim",
		"mark_oom_victim", "__oom_kill_process", "oom_kill_process", "out_of_memory", "bpf_map_lookup_elem_inside"})
	want := []string{"mark_oom_victim", "__oom_kill_process", "oom_kill_process", "out_of_memory", "bpf_map_lookup_elem_inside"}
	if !slices.Equal(got, want) {
		t.Errorf("trimmed %q, want %q", got, want)
	}
	if got := trimTracing([]string{"0xffffffffc0001234", "oom_kill_process"}); !slices.Equal(got, []string{"oom_kill_process"}) {
		t.Errorf("an unnamed BPF program's frame kept: %q", got)
	}
	// Seen on 5.10: the tracepoint's function twice at the top, and
	// out_of_memory() on both sides of its fexit trampoline.
	if got := trimTracing([]string{"mark_oom_victim", "mark_oom_victim", "__oom_kill_process"}); !slices.Equal(got, []string{"mark_oom_victim", "__oom_kill_process"}) {
		t.Errorf("the top frame's repeat kept: %q", got)
	}
	got = trimTracing([]string{"oom_kill_process", "out_of_memory", "bpf_trampoline_25627_1", "out_of_memory", "mem_cgroup_out_of_memory"})
	if want := []string{"oom_kill_process", "out_of_memory", "mem_cgroup_out_of_memory"}; !slices.Equal(got, want) {
		t.Errorf("through an fexit trampoline: %q, want %q", got, want)
	}
	got = trimTracing([]string{"oom_kill_process", "out_of_memory", "0xffffffffc0012345", "out_of_memory", "mem_cgroup_out_of_memory"})
	if want := []string{"oom_kill_process", "out_of_memory", "mem_cgroup_out_of_memory"}; !slices.Equal(got, want) {
		t.Errorf("through an fexit trampoline the index does not name: %q, want %q", got, want)
	}
	// An unnamed frame that is no trampoline (a module loaded since the
	// index was built) stays.
	got = trimTracing([]string{"oom_kill_process", "0xffffffffa0012345", "mem_cgroup_out_of_memory"})
	if want := []string{"oom_kill_process", "0xffffffffa0012345", "mem_cgroup_out_of_memory"}; !slices.Equal(got, want) {
		t.Errorf("an unnamed frame inside: %q, want %q", got, want)
	}
}
