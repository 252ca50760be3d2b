package tracer

import (
	"encoding/binary"
	"fmt"
	"os"
	"unsafe"
)

// RecordKind says which hook produced a record.
type RecordKind uint32

const (
	KindKillBegin = RecordKind(oomtraceRecordKindRECORD_KILL_BEGIN)
	KindMark      = RecordKind(oomtraceRecordKindRECORD_MARK)
	KindKillEnd   = RecordKind(oomtraceRecordKindRECORD_KILL_END)
	KindRekill    = RecordKind(oomtraceRecordKindRECORD_REKILL)
	// KindCandidates: the tasks out_of_memory() weighed, just before the
	// begin record of the decision they led to (same Seq).
	KindCandidates = RecordKind(oomtraceRecordKindRECORD_CANDIDATES)
	// KindNoKill: an out_of_memory() call that chose nobody.
	KindNoKill = RecordKind(oomtraceRecordKindRECORD_NO_KILL)
)

// Record is one ring buffer record, decoded. The join turns records into Kills.
type Record struct {
	Kind    RecordKind
	BootNs  uint64
	Seq     uint64 // decision number; 0 on a mark outside any decision
	Trigger Process
	Task    Task
	Exiting bool // the task was exiting when read (see TASK_EXITING in the C code)
	// Sigkilled: on a mark, the OOM killer's SIGKILL to this task was seen
	// just before, on the same thread (only where signal_generate is hooked).
	Sigkilled bool
	// Rekilled: that SIGKILL went to a process already marked, whose
	// KindRekill record reported the kill; this mark adds none.
	Rekilled bool

	// KindKillBegin, and a KindMark whose decision was found on the
	// deciding thread's stack; ScopeFrom says which ("" for neither).
	Scope       Scope
	KernelScore int64
	ScopeFrom   ScopeFrom
	// KindKillEnd only: growth of the OOM memcg's oom_kill counter during
	// the decision (0 for a global OOM), and the kills its SIGKILLs show
	// (meaningful where signal_generate is hooked).
	MemcgKills uint32
	Kills      uint32

	// KindCandidates and KindNoKill only (Scope too).
	Candidates Candidates

	// KindAllocRefused only.
	Alloc *AllocRefused

	// KindStack only (its thread in Trigger.Tid).
	Stack *KernelStack
}

var pageSize = uint64(os.Getpagesize())

// recordSize is the size of struct record in the BPF object.
var recordSize = binary.Size(oomtraceRecord{})

// copyable: bpf2go lays the Go struct out as the C one, padding spelled
// out, so a record is its bytes. Checked, not assumed: were the sizes to
// differ, records go through encoding/binary, field by field.
var copyable = unsafe.Sizeof(oomtraceRecord{}) == uintptr(recordSize)

// decodeRaw fills r from the sample's first recordSize bytes, in the host's
// byte order, as the BPF side wrote them. A copy, not encoding/binary's
// reflection: that was 5% of the daemon's CPU time per kill.
func decodeRaw(raw []byte, r *oomtraceRecord) error {
	if !copyable {
		_, err := binary.Decode(raw, binary.NativeEndian, r)
		return err
	}
	copy(unsafe.Slice((*byte)(unsafe.Pointer(r)), recordSize), raw)
	return nil
}

// unknownFlags maps the BPF side's task flags to Task.Unknown.
var unknownFlags = [...]struct {
	flag  oomtraceTaskFlags
	value Unknown
}{
	{oomtraceTaskFlagsTASK_PAGES_UNKNOWN, UnknownPages},
	{oomtraceTaskFlagsTASK_PGTABLES_UNKNOWN, UnknownPgTables},
	{oomtraceTaskFlagsTASK_CGROUP_UNKNOWN, UnknownCgroup},
}

// kindOffset is where every record keeps its kind (after boot_ns and seq).
const kindOffset = 16

// DecodeRecord decodes a raw ring buffer sample with the bpf2go-generated layout.
func DecodeRecord(raw []byte) (Record, error) {
	if len(raw) < kindOffset+4 {
		return Record{}, fmt.Errorf("decoding record: %d bytes, too short for a kind", len(raw))
	}
	switch kind := RecordKind(binary.NativeEndian.Uint32(raw[kindOffset:])); kind {
	case KindKillBegin, KindMark, KindKillEnd, KindRekill:
	case KindCandidates, KindNoKill:
		return decodeCandidates(raw)
	case KindAllocRefused:
		return decodeAlloc(raw)
	case KindStack:
		return decodeStack(raw)
	default:
		return Record{}, fmt.Errorf("decoding record: unknown kind %d", kind)
	}
	var r oomtraceRecord
	if len(raw) < recordSize {
		return Record{}, fmt.Errorf("decoding record: %d bytes, want %d", len(raw), recordSize)
	}
	if err := decodeRaw(raw, &r); err != nil {
		return Record{}, fmt.Errorf("decoding record: %w", err)
	}
	kind := RecordKind(r.Kind)
	task, flag := decodeTask(r.Task)
	rec := Record{
		Kind:   kind,
		BootNs: r.BootNs,
		Seq:    r.Seq,
		Trigger: Process{
			Pid:  r.TriggerPid,
			Tid:  r.TriggerTid,
			Comm: EscapeComm(r.TriggerComm[:]),
		},
		Task:      task,
		Exiting:   flag(oomtraceTaskFlagsTASK_EXITING),
		Sigkilled: flag(oomtraceTaskFlagsTASK_OOM_SIGKILLED),
		Rekilled:  flag(oomtraceTaskFlagsTASK_REKILLED),
	}
	if kind == KindKillEnd {
		rec.MemcgKills = r.MemcgKills
		rec.Kills = r.Kills
	}
	switch r.ScopeFrom {
	case uint32(oomtraceScopeSourceSCOPE_HOOK):
		rec.ScopeFrom = ScopeFromHook
	case uint32(oomtraceScopeSourceSCOPE_STACK):
		rec.ScopeFrom = ScopeFromStack
	}
	if rec.ScopeFrom != "" {
		rec.KernelScore = r.ChosenPoints
		rec.Scope = Scope{
			Constraint: Constraint(r.Constraint),
			TotalPages: r.Totalpages,
			MemcgID:    r.OomMemcgId,
			GFPMask:    r.GfpMask,
			Order:      r.Order,
		}
	}
	return rec, nil
}

// The candidates record's size without its candidates, and each one's: the
// BPF side sends only the candidates it kept.
var (
	candidatesHeaderSize = int(unsafe.Offsetof(oomtraceCandidatesRecord{}.C))
	candidateSize        = binary.Size(oomtraceCandidate{})
)

// decodeCandidatesRaw fills r from a candidates sample, which holds only
// the candidates sent (the rest of r stays zero), as decodeRaw does.
func decodeCandidatesRaw(raw []byte, r *oomtraceCandidatesRecord) error {
	size := int(unsafe.Sizeof(*r))
	if len(raw) > size {
		raw = raw[:size]
	}
	if unsafe.Sizeof(*r) == uintptr(binary.Size(r)) {
		copy(unsafe.Slice((*byte)(unsafe.Pointer(r)), size), raw)
		return nil
	}
	full := make([]byte, binary.Size(r))
	copy(full, raw)
	_, err := binary.Decode(full, binary.NativeEndian, r)
	return err
}

// decodeCandidates decodes a KindCandidates or KindNoKill record.
func decodeCandidates(raw []byte) (Record, error) {
	var r oomtraceCandidatesRecord
	if len(raw) < candidatesHeaderSize {
		return Record{}, fmt.Errorf("decoding candidates: %d bytes, want at least %d", len(raw), candidatesHeaderSize)
	}
	// The fixed part, then as many candidates as were sent (the sample is
	// padded to 8 bytes, so its length only bounds their number).
	if err := decodeCandidatesRaw(raw, &r); err != nil {
		return Record{}, fmt.Errorf("decoding candidates: %w", err)
	}
	n := int(r.N)
	if n > len(r.C) || candidatesHeaderSize+n*candidateSize > len(raw) {
		return Record{}, fmt.Errorf("decoding candidates: %d candidates in %d bytes", n, len(raw))
	}
	rec := Record{
		Kind:    RecordKind(r.Kind),
		BootNs:  r.BootNs,
		Seq:     r.Seq,
		Trigger: Process{Pid: r.TriggerPid, Tid: r.TriggerTid, Comm: EscapeComm(r.TriggerComm[:])},
		Scope: Scope{
			Constraint: Constraint(r.Constraint),
			TotalPages: r.Totalpages,
			MemcgID:    r.OomMemcgId,
			GFPMask:    r.GfpMask,
			Order:      r.Order,
		},
		Candidates: Candidates{Scored: int(r.Scored), Unkillable: int(r.Unkillable), List: make([]Candidate, 0, n)},
	}
	for _, c := range r.C[:n] {
		task, _ := decodeTask(c.Task)
		rec.Candidates.List = append(rec.Candidates.List, Candidate{Task: task, Score: c.Points, Scanned: c.Scanned})
	}
	rec.Candidates.rank()
	return rec, nil
}

// decodeTask turns the BPF side's task_info into a Task, and returns a test
// of its other flags.
func decodeTask(t oomtraceTaskInfo) (Task, func(oomtraceTaskFlags) bool) {
	flag := func(f oomtraceTaskFlags) bool { return t.Flags&uint32(f) != 0 }
	pages := Pages{
		Anon:     t.AnonPages,
		File:     t.FilePages,
		Shmem:    t.ShmemPages,
		Swap:     t.SwapPages,
		PgTables: t.PgtablesBytes / pageSize,
	}
	if flag(oomtraceTaskFlagsTASK_PAGES_KB) {
		// The classic tracepoint's record: kB, shifted down as the kernel
		// shifted pages up (exact).
		kbPerPage := pageSize / 1024
		pages.Anon /= kbPerPage
		pages.File /= kbPerPage
		pages.Shmem /= kbPerPage
	}
	var unknown Unknown
	for _, u := range unknownFlags {
		if flag(u.flag) {
			unknown |= u.value
		}
	}
	return Task{
		Process:     Process{Pid: t.Pid, Tid: t.Tid, Comm: EscapeComm(t.Comm[:])},
		UID:         t.Uid,
		OOMScoreAdj: t.OomScoreAdj,
		StartTime:   t.StartTime,
		Pages:       pages,
		CgroupID:    t.MemcgId,
		DflCgroupID: t.DflCgroupId,
		Partial:     flag(oomtraceTaskFlagsTASK_PARTIAL),
		OOMOrigin:   flag(oomtraceTaskFlagsTASK_OOM_ORIGIN),
		Unknown:     unknown,
	}, flag
}
