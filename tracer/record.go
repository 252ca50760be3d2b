package tracer

import (
	"encoding/binary"
	"fmt"
	"os"
)

// RecordKind says which hook produced a record.
type RecordKind uint32

const (
	KindKillBegin = RecordKind(oomtraceRecordKindRECORD_KILL_BEGIN)
	KindMark      = RecordKind(oomtraceRecordKindRECORD_MARK)
	KindKillEnd   = RecordKind(oomtraceRecordKindRECORD_KILL_END)
)

// Record is one ring buffer record, decoded. The join turns records into Kills.
type Record struct {
	Kind    RecordKind
	BootNs  uint64
	Seq     uint64 // decision number; 0 on a mark outside any decision
	Trigger Process
	Task    Task
	Exiting bool // the task was exiting when read (see TASK_EXITING in the C code)

	// KindKillBegin only.
	Scope       Scope
	KernelScore int64
	// KindKillEnd only: growth of the OOM memcg's oom_kill counter during
	// the decision (0 for a global OOM).
	MemcgKills uint32
}

var pageSize = uint64(os.Getpagesize())

// recordSize is the size of struct record in the BPF object.
var recordSize = binary.Size(oomtraceRecord{})

// DecodeRecord decodes a raw ring buffer sample with the bpf2go-generated layout.
func DecodeRecord(raw []byte) (Record, error) {
	var r oomtraceRecord
	if len(raw) < recordSize {
		return Record{}, fmt.Errorf("decoding record: %d bytes, want %d", len(raw), recordSize)
	}
	if _, err := binary.Decode(raw, binary.NativeEndian, &r); err != nil {
		return Record{}, fmt.Errorf("decoding record: %w", err)
	}
	kind := RecordKind(r.Kind)
	if kind < KindKillBegin || kind > KindKillEnd {
		return Record{}, fmt.Errorf("decoding record: unknown kind %d", r.Kind)
	}
	t := r.Task
	rec := Record{
		Kind:   kind,
		BootNs: r.BootNs,
		Seq:    r.Seq,
		Trigger: Process{
			Pid:  r.TriggerPid,
			Tid:  r.TriggerTid,
			Comm: EscapeComm(r.TriggerComm[:]),
		},
		Task: Task{
			Process:     Process{Pid: t.Pid, Tid: t.Tid, Comm: EscapeComm(t.Comm[:])},
			UID:         t.Uid,
			OOMScoreAdj: t.OomScoreAdj,
			StartTime:   t.StartTime,
			Pages: Pages{
				Anon:     t.AnonPages,
				File:     t.FilePages,
				Shmem:    t.ShmemPages,
				Swap:     t.SwapPages,
				PgTables: t.PgtablesBytes / pageSize,
			},
			CgroupID:    t.MemcgId,
			DflCgroupID: t.DflCgroupId,
			Partial:     t.Flags&uint32(oomtraceTaskFlagsTASK_PARTIAL) != 0,
			OOMOrigin:   t.Flags&uint32(oomtraceTaskFlagsTASK_OOM_ORIGIN) != 0,
		},
		Exiting: t.Flags&uint32(oomtraceTaskFlagsTASK_EXITING) != 0,
	}
	if kind == KindKillEnd {
		rec.MemcgKills = r.MemcgKills
	}
	if kind == KindKillBegin {
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
