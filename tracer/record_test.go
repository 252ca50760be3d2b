package tracer

import (
	"encoding/binary"
	"math"
	"reflect"
	"slices"
	"testing"
	"unsafe"

	"github.com/cilium/ebpf/btf"
)

// The Go twin of struct record is generated from the object's BTF; this
// proves the decoder reads the same number of bytes the BPF side writes.
func TestRecordLayoutMatchesObject(t *testing.T) {
	spec, err := loadOomtrace()
	if err != nil {
		t.Fatal(err)
	}
	var rec *btf.Struct
	if err := spec.Types.TypeByName("record", &rec); err != nil {
		t.Fatal(err)
	}
	if got, want := binary.Size(oomtraceRecord{}), int(rec.Size); got != want {
		t.Fatalf("Go record is %d bytes, BPF struct record is %d", got, want)
	}
}

func encode(t *testing.T, r oomtraceRecord) []byte {
	t.Helper()
	buf, err := binary.Append(nil, binary.NativeEndian, r)
	if err != nil {
		t.Fatal(err)
	}
	return buf
}

func TestDecodeRecord(t *testing.T) {
	raw := oomtraceRecord{
		BootNs:       123456789,
		Seq:          7,
		Kind:         uint32(oomtraceRecordKindRECORD_KILL_BEGIN),
		TriggerPid:   10,
		TriggerTid:   11,
		ChosenPoints: 16680,
		Totalpages:   16384,
		OomMemcgId:   4242,
		GfpMask:      0xcc0,
		Order:        0,
		Constraint:   3,
		ScopeFrom:    uint32(oomtraceScopeSourceSCOPE_HOOK),
	}
	copy(raw.TriggerComm[:], "trigger")
	raw.Task = oomtraceTaskInfo{
		StartTime: 99, MemcgId: 4242, DflCgroupId: 1,
		AnonPages: 16242, FilePages: 1, ShmemPages: 383, SwapPages: 2,
		PgtablesBytes: 54 * uint64(pageSize),
		Pid:           20, Tid: 21, Uid: 1000, OomScoreAdj: -17,
		Flags: uint32(oomtraceTaskFlagsTASK_EXITING),
	}
	copy(raw.Task.Comm[:], "victim\xff")

	rec, err := DecodeRecord(encode(t, raw))
	if err != nil {
		t.Fatal(err)
	}
	want := Record{
		Kind:    KindKillBegin,
		BootNs:  123456789,
		Seq:     7,
		Trigger: Process{Pid: 10, Tid: 11, Comm: "trigger"},
		Task: Task{
			Process:     Process{Pid: 20, Tid: 21, Comm: `victim\xff`},
			UID:         1000,
			OOMScoreAdj: -17,
			StartTime:   99,
			Pages:       Pages{Anon: 16242, File: 1, Shmem: 383, Swap: 2, PgTables: 54},
			CgroupID:    4242,
			DflCgroupID: 1,
		},
		Exiting:     true,
		KernelScore: 16680,
		Scope:       Scope{Constraint: ConstraintMemcg, TotalPages: 16384, MemcgID: 4242, GFPMask: 0xcc0},
		ScopeFrom:   ScopeFromHook,
	}
	if !reflect.DeepEqual(rec, want) {
		t.Fatalf("decoded\n%+v\nwant\n%+v", rec, want)
	}
	if rec.Task.Pages.RSS() != 16626 {
		t.Errorf("RSS %d", rec.Task.Pages.RSS())
	}
}

func TestDecodeRecordRejectsBadInput(t *testing.T) {
	if _, err := DecodeRecord(make([]byte, 10)); err == nil {
		t.Error("short record decoded")
	}
	bad := encode(t, oomtraceRecord{Kind: 99})
	if _, err := DecodeRecord(bad); err == nil {
		t.Error("unknown kind decoded")
	}
}

func TestDecodeEndCarriesMemcgCount(t *testing.T) {
	rec, err := DecodeRecord(encode(t, oomtraceRecord{Kind: uint32(oomtraceRecordKindRECORD_KILL_END), Seq: 3, MemcgKills: 5}))
	if err != nil || rec.MemcgKills != 5 || rec.Seq != 3 {
		t.Fatalf("%+v %v", rec, err)
	}
}

func TestDecodeMarkHasNoScope(t *testing.T) {
	rec, err := DecodeRecord(encode(t, oomtraceRecord{
		Kind: uint32(oomtraceRecordKindRECORD_MARK), Totalpages: 5, ChosenPoints: 5,
		Task: oomtraceTaskInfo{Tid: 3, Flags: uint32(oomtraceTaskFlagsTASK_PARTIAL)},
	}))
	if err != nil {
		t.Fatal(err)
	}
	if rec.Scope != (Scope{}) || rec.KernelScore != 0 || !rec.Task.Partial {
		t.Errorf("mark decoded as %+v", rec)
	}
}

// The classic tracepoint's 2024 fields are kB; the event is in pages.
func TestDecodeMarkFromTracepointFields(t *testing.T) {
	kb := pageSize / 1024
	rec, err := DecodeRecord(encode(t, oomtraceRecord{
		Kind: uint32(oomtraceRecordKindRECORD_MARK),
		Task: oomtraceTaskInfo{
			Tid: 3, AnonPages: 16242 * kb, FilePages: 7 * kb, ShmemPages: 0, PgtablesBytes: 54 * pageSize,
			Flags: uint32(oomtraceTaskFlagsTASK_PARTIAL | oomtraceTaskFlagsTASK_PAGES_KB | oomtraceTaskFlagsTASK_OOM_SIGKILLED),
		},
	}))
	if err != nil {
		t.Fatal(err)
	}
	if want := (Pages{Anon: 16242, File: 7, PgTables: 54}); rec.Task.Pages != want {
		t.Errorf("pages %+v, want %+v", rec.Task.Pages, want)
	}
	if !rec.Sigkilled || !rec.Task.Partial {
		t.Errorf("flags lost: %+v", rec)
	}
}

// What a kernel's layout kept the BPF side from reading is said, by name.
func TestDecodeUnknownValues(t *testing.T) {
	rec, err := DecodeRecord(encode(t, oomtraceRecord{
		Kind: uint32(oomtraceRecordKindRECORD_MARK),
		Task: oomtraceTaskInfo{Pid: 3, Tid: 3,
			Flags: uint32(oomtraceTaskFlagsTASK_PAGES_UNKNOWN | oomtraceTaskFlagsTASK_CGROUP_UNKNOWN)},
	}))
	if err != nil {
		t.Fatal(err)
	}
	got := rec.Task.Unknown.Names()
	if len(got) != 2 || got[0] != "pages" || got[1] != "cgroup" {
		t.Errorf("unknown %v, want [pages cgroup]", got)
	}
	if n := Unknown(0).Names(); n == nil || len(n) != 0 {
		t.Errorf("nothing unknown: %#v, want an empty list", n)
	}
}

// A mark whose decision was found on the stack carries it; the join puts it
// on the kill.
func TestMarkWithScopeFromStack(t *testing.T) {
	raw := oomtraceRecord{
		Kind: uint32(oomtraceRecordKindRECORD_MARK), ChosenPoints: 16680, Totalpages: 16384, OomMemcgId: 9,
		Constraint: 3, ScopeFrom: uint32(oomtraceScopeSourceSCOPE_STACK),
		Task: oomtraceTaskInfo{Pid: 5, Tid: 5, StartTime: 1, Flags: uint32(oomtraceTaskFlagsTASK_OOM_SIGKILLED)},
	}
	rec, err := DecodeRecord(encode(t, raw))
	if err != nil {
		t.Fatal(err)
	}
	if rec.ScopeFrom != ScopeFromStack || rec.KernelScore != 16680 || rec.Scope.MemcgID != 9 {
		t.Fatalf("decoded %+v", rec)
	}
	var got []Kill
	j := NewJoiner(AttachMarkVictimOnly, func(k Kill) { got = append(got, k) })
	j.Signals = true
	j.Feed(rec)
	if len(got) != 1 || got[0].Scope == nil || *got[0].KernelScore != 16680 || got[0].ScopeFrom != ScopeFromStack {
		t.Fatalf("kill %+v", got)
	}
}

// The copy that decodes records reads the same values encoding/binary does,
// field by field, and is the path taken on this build.
func TestDecodeRawMatchesEncodingBinary(t *testing.T) {
	if !copyable {
		t.Fatalf("struct record: Go size %d, object size %d: records would not be copied", unsafe.Sizeof(oomtraceRecord{}), recordSize)
	}
	raw := make([]byte, recordSize)
	for i := range raw {
		raw[i] = byte(i*7 + 3)
	}
	var copied, decoded oomtraceRecord
	if err := decodeRaw(raw, &copied); err != nil {
		t.Fatal(err)
	}
	if _, err := binary.Decode(raw, binary.NativeEndian, &decoded); err != nil {
		t.Fatal(err)
	}
	if copied != decoded {
		t.Fatalf("copy %+v\nbinary %+v", copied, decoded)
	}
}

// The BPF side sends a candidates record cut after its last candidate kept
// (the ring pads it to 8 bytes): the decoder reads that many and no more,
// and ranks them as the kernel does.
func TestDecodeCandidates(t *testing.T) {
	var raw oomtraceCandidatesRecord
	raw.BootNs, raw.Seq, raw.Kind = 5, 9, uint32(oomtraceRecordKindRECORD_CANDIDATES)
	raw.Scored, raw.Unkillable, raw.N = 7, 1, 4
	raw.Totalpages, raw.OomMemcgId, raw.Constraint = 16384, 42, 3
	copy(raw.TriggerComm[:], "hog")
	for i, c := range []struct {
		pid     uint32
		points  int64
		scanned uint32
	}{{100, 500, 1}, {101, 900, 2}, {102, math.MinInt64, 3}, {103, 500, 6}} {
		raw.C[i] = oomtraceCandidate{Points: c.points, Scanned: c.scanned}
		raw.C[i].Task.Pid, raw.C[i].Task.Tid = c.pid, c.pid
		raw.C[i].Task.AnonPages = uint64(c.pid)
	}
	buf, err := binary.Append(nil, binary.NativeEndian, raw)
	if err != nil {
		t.Fatal(err)
	}
	sent := candidatesHeaderSize + 4*candidateSize
	rec, err := DecodeRecord(buf[:sent])
	if err != nil {
		t.Fatal(err)
	}
	if rec.Kind != KindCandidates || rec.Seq != 9 || rec.Trigger.Comm != "hog" || rec.Scope.MemcgID != 42 {
		t.Errorf("header: %+v", rec)
	}
	if c := rec.Candidates; c.Scored != 7 || c.Unkillable != 1 || len(c.List) != 4 {
		t.Fatalf("candidates: %+v", c)
	}
	var pids []uint32
	for _, c := range rec.Candidates.List {
		pids = append(pids, c.Pid)
		if c.Pages.Anon != uint64(c.Pid) {
			t.Errorf("pid %d: anon %d", c.Pid, c.Pages.Anon)
		}
	}
	// 900 first; of the two 500s the later scanned (103); unkillable last.
	if want := []uint32{101, 103, 100, 102}; !slices.Equal(pids, want) {
		t.Errorf("ranked %v, want %v", pids, want)
	}
	if _, err := DecodeRecord(buf[:sent-1]); err == nil {
		t.Error("a record cut inside its last candidate decoded")
	}
}
