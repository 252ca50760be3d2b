package tracer

//go:generate go tool bpf2go -tags linux -cc clang -cflags "-O2 -g -Wall -Werror -I../bpf" -target amd64,arm64 -type record -type task_info -type record_kind -type task_flags -type scope_source -type kill_signal -type decision -type candidates_record -type candidate -type oom_call -type alloc_record -type alloc_syscall -type alloc_key -type alloc_count -type stack_record oomtrace ../bpf/oomtrace.bpf.c
