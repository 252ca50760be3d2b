package tracer

import (
	"encoding/binary"
	"fmt"
	"runtime"
	"time"
	"unsafe"

	"github.com/cilium/ebpf/link"
)

// KindAllocRefused: a memory request the kernel refused with ENOMEM.
const KindAllocRefused = RecordKind(oomtraceRecordKindRECORD_ALLOC_REFUSED)

// Syscall names a traced memory request.
type Syscall string

const (
	SyscallFork   Syscall = "fork"
	SyscallVfork  Syscall = "vfork"
	SyscallClone  Syscall = "clone"
	SyscallClone3 Syscall = "clone3"
	SyscallMmap   Syscall = "mmap"
	SyscallMremap Syscall = "mremap"
	SyscallBrk    Syscall = "brk"
)

// ForkLike says whether the call creates a task: its request is the
// caller's own commit, not an argument.
func (s Syscall) ForkLike() bool {
	return s == SyscallFork || s == SyscallVfork || s == SyscallClone || s == SyscallClone3
}

var syscallNames = map[oomtraceAllocSyscall]Syscall{
	oomtraceAllocSyscallALLOC_FORK:   SyscallFork,
	oomtraceAllocSyscallALLOC_VFORK:  SyscallVfork,
	oomtraceAllocSyscallALLOC_CLONE:  SyscallClone,
	oomtraceAllocSyscallALLOC_CLONE3: SyscallClone3,
	oomtraceAllocSyscallALLOC_MMAP:   SyscallMmap,
	oomtraceAllocSyscallALLOC_MREMAP: SyscallMremap,
	oomtraceAllocSyscallALLOC_BRK:    SyscallBrk,
}

// AllocRefused is one refused request, as the BPF side saw it at the
// syscall's exit.
type AllocRefused struct {
	Time    time.Time
	BootNs  uint64
	Syscall Syscall
	Task    Task  // the caller (its pages are its mm's at the refusal)
	Ret     int64 // what the call returned: -ENOMEM, or brk's old break
	// RequestBytes is what was asked for: mmap's length, mremap's new
	// length, brk's growth; for a fork-like call the caller's private
	// writable mappings (DataPages + StackPages), which dup_mmap() charges.
	RequestBytes uint64
	// OldLen: mremap's old length; brk: the break it stayed at.
	OldLen uint64
	// The caller's mm at the refusal, pages: mm->total_vm, data_vm, stack_vm.
	TotalVMPages, DataPages, StackPages uint64
	// Thread: a clone with CLONE_VM, or a vfork: the child shares the
	// caller's mm, so nothing is copied or charged (RequestBytes 0).
	Thread bool
	// Count is the refusals of this process and syscall so far, this one
	// included: the BPF side sends a record at most every 10 ms per
	// process and syscall and counts the rest (Tracer.AllocCount).
	Count uint64
}

// cloneVM is CLONE_VM (uapi/linux/sched.h).
const cloneVM = 0x100

// allocRecordSize is the size of struct alloc_record in the BPF object.
var allocRecordSize = binary.Size(oomtraceAllocRecord{})

// decodeAlloc decodes a KindAllocRefused sample into rec.Alloc.
func decodeAlloc(raw []byte) (Record, error) {
	var r oomtraceAllocRecord
	if len(raw) < allocRecordSize {
		return Record{}, fmt.Errorf("decoding alloc_refused: %d bytes, want %d", len(raw), allocRecordSize)
	}
	if unsafe.Sizeof(r) == uintptr(allocRecordSize) {
		copy(unsafe.Slice((*byte)(unsafe.Pointer(&r)), allocRecordSize), raw)
	} else if _, err := binary.Decode(raw, binary.NativeEndian, &r); err != nil {
		return Record{}, fmt.Errorf("decoding alloc_refused: %w", err)
	}
	name, ok := syscallNames[oomtraceAllocSyscall(r.Syscall)]
	if !ok {
		return Record{}, fmt.Errorf("decoding alloc_refused: unknown syscall %d", r.Syscall)
	}
	task, _ := decodeTask(r.Task)
	a := &AllocRefused{
		BootNs: r.BootNs, Syscall: name, Task: task, Ret: r.Ret, RequestBytes: r.Request, OldLen: r.OldLen,
		TotalVMPages: r.TotalVm, DataPages: r.DataVm, StackPages: r.StackVm, Count: r.Count,
	}
	a.Thread = name == SyscallVfork || (name == SyscallClone || name == SyscallClone3) && r.CloneFlags&cloneVM != 0
	if name.ForkLike() && !a.Thread {
		a.RequestBytes = (r.DataVm + r.StackVm) * pageSize
	}
	return Record{Kind: KindAllocRefused, BootNs: r.BootNs, Trigger: task.Process, Alloc: a}, nil
}

var syscallNumbers = func() map[Syscall]oomtraceAllocSyscall {
	m := map[Syscall]oomtraceAllocSyscall{}
	for n, s := range syscallNames {
		m[s] = n
	}
	return m
}()

// AllocCount is the refusals of process pid (started at startTime, ns
// since boot) and syscall counted so far, including those after its last
// record; false when the BPF side has no count of them (never refused, or
// aged out of its map). Safe from any goroutine.
func (t *Tracer) AllocCount(pid uint32, startTime uint64, syscall Syscall) (uint64, bool) {
	m := t.att.maps["alloc_counts"]
	var c oomtraceAllocCount
	if err := m.Lookup(oomtraceAllocKey{Tgid: pid, Syscall: uint32(syscallNumbers[syscall])}, &c); err != nil || c.StartTime != startTime {
		return 0, false
	}
	return c.Count, true
}

// allocSyscalls are the syscalls alloc_refused hooks, per architecture:
// arm64 has no fork or vfork.
func allocSyscalls(arch string) []Syscall {
	all := []Syscall{SyscallMmap, SyscallMremap, SyscallBrk, SyscallClone, SyscallClone3}
	if arch == "arm64" {
		return all
	}
	return append(all, SyscallFork, SyscallVfork)
}

// attachAlloc hooks the exit tracepoint of each syscall alloc_refused
// traces, each on its own: a kernel without one loses that syscall, named
// in Refused, never the load.
func (a *attacher) attachAlloc() {
	for _, sc := range allocSyscalls(runtime.GOARCH) {
		err := func() error {
			prog, err := a.loadProgram("alloc_exit_" + string(sc))
			if err != nil {
				return err
			}
			l, err := link.Tracepoint("syscalls", "sys_exit_"+string(sc), prog, nil)
			if err != nil {
				return fmt.Errorf("attaching tracepoint/syscalls/sys_exit_%s: %w", sc, err)
			}
			a.links = append(a.links, l)
			return nil
		}()
		if err != nil {
			a.hooks.Refused["alloc_refused_"+string(sc)] = err.Error()
			continue
		}
		a.hooks.AllocRefused = append(a.hooks.AllocRefused, string(sc))
	}
}
