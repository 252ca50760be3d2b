package tracer

import (
	"fmt"
	"slices"
	"syscall"
	"unsafe"
)

// KindStack: the deciding thread's kernel stack, just before the begin
// record of its decision (same Seq), or before a mark outside any hooked
// decision (Seq 0).
const KindStack = RecordKind(oomtraceRecordKindRECORD_STACK)

// KernelStack is a thread's kernel stack at the OOM: return addresses,
// innermost first. Err says why there are none (bpf_get_stack() failed,
// or its record was lost).
type KernelStack struct {
	IPs []uint64
	Err string
}

var stackRecordSize = int(unsafe.Sizeof(oomtraceStackRecord{}))

// decodeStack decodes a KindStack sample: its thread in Trigger.Tid.
func decodeStack(raw []byte) (Record, error) {
	if len(raw) < stackRecordSize {
		return Record{}, fmt.Errorf("decoding stack record: %d bytes, want %d", len(raw), stackRecordSize)
	}
	var r oomtraceStackRecord
	copy(unsafe.Slice((*byte)(unsafe.Pointer(&r)), stackRecordSize), raw)
	st := &KernelStack{}
	switch n := int(r.Len); {
	case n < 0:
		st.Err = fmt.Sprintf("bpf_get_stack: %v", syscall.Errno(-n))
	default:
		n = min(n/8, len(r.Ips))
		st.IPs = make([]uint64, 0, n+1)
		for _, ip := range r.Ips[:n] {
			if ip != 0 {
				st.IPs = append(st.IPs, ip)
			}
		}
		// arm64's kprobe at the entry of oom_kill_process(): its caller
		// is in the link register only, which the walk skipped.
		if lr := r.EntryLr; lr != 0 && len(st.IPs) > 0 && (len(st.IPs) < 2 || st.IPs[1] != lr) {
			st.IPs = slices.Insert(st.IPs, 1, lr)
		}
	}
	return Record{Kind: KindStack, BootNs: r.BootNs, Seq: r.Seq, Trigger: Process{Tid: r.Tid}, Stack: st}, nil
}

// pendingStack is a stack record waiting for the record it belongs to.
type pendingStack struct {
	tid   uint32
	seq   uint64
	stack *KernelStack
}

// maxPendingStacks bounds the stacks kept for records not yet seen: a
// stack comes just before its own record, so only concurrent OOMs on other
// CPUs come between; one whose record was lost is dropped in time.
const maxPendingStacks = 16

func (j *Joiner) keepStack(r Record) {
	if len(j.stacks) == maxPendingStacks {
		j.stacks = append(j.stacks[:0], j.stacks[1:]...)
	}
	j.stacks = append(j.stacks, pendingStack{tid: r.Trigger.Tid, seq: r.Seq, stack: r.Stack})
}

// takeStack is the stack thread tid sent for the record of decision seq
// (0: a mark outside any), and forgets it. A stack whose own record was
// lost is not confused with another: each belongs to one thread and seq,
// and a newer one of the same thread replaces it.
func (j *Joiner) takeStack(tid uint32, seq uint64) *KernelStack {
	for i := len(j.stacks) - 1; i >= 0; i-- {
		if p := j.stacks[i]; p.tid == tid && p.seq == seq {
			j.stacks = append(j.stacks[:i], j.stacks[i+1:]...)
			return p.stack
		}
	}
	return nil
}
