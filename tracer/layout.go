package tracer

import (
	"errors"
	"fmt"

	"github.com/cilium/ebpf/btf"
)

// MarkLayout is what a mark_victim hook hands the BPF program. The
// tracepoint changed in 2024 (and the change was backported to stable
// branches, not to every vendor kernel), so it is read from the kernel's BTF,
// never inferred from the version.
type MarkLayout string

const (
	// MarkLayoutTask: tp_btf with TP_PROTO(struct task_struct *, uid_t),
	// the victim's task itself.
	MarkLayoutTask MarkLayout = "task"
	// MarkLayoutPid: the victim's thread id only (tp_btf with the pre-2024
	// TP_PROTO(int pid), or the classic tracepoint's pre-2024 record).
	MarkLayoutPid MarkLayout = "pid"
	// MarkLayoutPidFields: the classic tracepoint's 2024 record: the thread
	// id plus comm, uid, oom_score_adj and the memory counters in kB.
	MarkLayoutPidFields MarkLayout = "pid+fields"
)

// tpBtfLayout reads mark_victim's prototype from btf_trace_mark_victim, the
// typedef every raw tracepoint has: a pointer to func(void *, args...).
func (a *attacher) tpBtfLayout() (MarkLayout, error) {
	spec, err := a.kernelBTF()
	if err != nil {
		return "", err
	}
	return markVictimLayout(spec)
}

func markVictimLayout(spec *btf.Spec) (MarkLayout, error) {
	var td *btf.Typedef
	if err := spec.TypeByName("btf_trace_mark_victim", &td); err != nil {
		return "", fmt.Errorf("tp_btf/mark_victim: no btf_trace_mark_victim in the kernel's BTF: %w", err)
	}
	ptr, ok := btf.UnderlyingType(td.Type).(*btf.Pointer)
	if !ok {
		return "", fmt.Errorf("tp_btf/mark_victim: btf_trace_mark_victim is %v, not a function pointer", td.Type)
	}
	proto, ok := btf.UnderlyingType(ptr.Target).(*btf.FuncProto)
	if !ok || len(proto.Params) < 2 {
		return "", fmt.Errorf("tp_btf/mark_victim: unexpected prototype %v", ptr.Target)
	}
	// Params[0] is the tracepoint's void *__data.
	switch arg := btf.UnderlyingType(proto.Params[1].Type).(type) {
	case *btf.Pointer:
		if s, ok := btf.UnderlyingType(arg.Target).(*btf.Struct); ok && s.Name == "task_struct" {
			return MarkLayoutTask, nil
		}
	case *btf.Int:
		return MarkLayoutPid, nil
	}
	return "", fmt.Errorf("tp_btf/mark_victim: first argument %v is neither a task nor a pid", proto.Params[1].Type)
}

// tracepointLayout reads the classic tracepoint's record from
// trace_event_raw_mark_victim; the BPF program relocates against the same type.
func (a *attacher) tracepointLayout() MarkLayout {
	spec, err := a.kernelBTF()
	if err != nil {
		return MarkLayoutPid
	}
	return recordLayout(spec)
}

func recordLayout(spec *btf.Spec) MarkLayout {
	var rec *btf.Struct
	if err := spec.TypeByName("trace_event_raw_mark_victim", &rec); err != nil {
		return MarkLayoutPid
	}
	for _, m := range rec.Members {
		if m.Name == "anon_rss" {
			return MarkLayoutPidFields
		}
	}
	return MarkLayoutPid
}

func (a *attacher) kernelBTF() (*btf.Spec, error) {
	if a.btf == nil {
		a.btf = btf.NewCache()
	}
	spec, err := a.btf.Kernel()
	if errors.Is(err, btf.ErrNotSupported) {
		return nil, fmt.Errorf("the kernel has no BTF (/sys/kernel/btf/vmlinux): %w", err)
	}
	return spec, err
}

// badnessPrototype checks oom_badness() against what the candidate hooks
// read: long oom_badness(struct task_struct *, unsigned long), the
// prototype since 5.9 (before, it returned unsigned long and took the
// memcg and nodemask too). A mismatch costs the kernel's candidate scores,
// never the load.
func badnessPrototype(spec *btf.Spec) error {
	var fn *btf.Func
	if err := spec.TypeByName("oom_badness", &fn); err != nil {
		return fmt.Errorf("oom_badness: not in the kernel's BTF: %w", err)
	}
	proto, ok := fn.Type.(*btf.FuncProto)
	if !ok || len(proto.Params) != 2 {
		return fmt.Errorf("oom_badness: prototype %v, want (struct task_struct *, unsigned long)", fn.Type)
	}
	ptr, ok := btf.UnderlyingType(proto.Params[0].Type).(*btf.Pointer)
	if s, isStruct := btf.UnderlyingType(ptrTarget(ptr, ok)).(*btf.Struct); !isStruct || s.Name != "task_struct" {
		return fmt.Errorf("oom_badness: first argument %v, want struct task_struct *", proto.Params[0].Type)
	}
	if ret, ok := btf.UnderlyingType(proto.Return).(*btf.Int); !ok || ret.Encoding != btf.Signed {
		return fmt.Errorf("oom_badness: returns %v, want long", proto.Return)
	}
	return nil
}

func ptrTarget(p *btf.Pointer, ok bool) btf.Type {
	if !ok {
		return (*btf.Void)(nil)
	}
	return p.Target
}
