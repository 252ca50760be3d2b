package tracer

import (
	"encoding/binary"
	"testing"

	"github.com/cilium/ebpf/btf"
)

func TestAllocRecordLayoutMatchesObject(t *testing.T) {
	spec, err := loadOomtrace()
	if err != nil {
		t.Fatal(err)
	}
	var rec *btf.Struct
	if err := spec.Types.TypeByName("alloc_record", &rec); err != nil {
		t.Fatal(err)
	}
	if got, want := binary.Size(oomtraceAllocRecord{}), int(rec.Size); got != want {
		t.Fatalf("Go alloc_record is %d bytes, BPF struct alloc_record is %d", got, want)
	}
	// Every record keeps its kind at the same offset.
	for _, m := range rec.Members {
		if m.Name == "kind" && m.Offset.Bytes() != kindOffset {
			t.Errorf("alloc_record's kind at %d, want %d", m.Offset.Bytes(), kindOffset)
		}
	}
}

func encodeAlloc(t *testing.T, r oomtraceAllocRecord) []byte {
	t.Helper()
	buf, err := binary.Append(nil, binary.NativeEndian, r)
	if err != nil {
		t.Fatal(err)
	}
	return buf
}

func TestDecodeAlloc(t *testing.T) {
	task := oomtraceTaskInfo{Pid: 812, Tid: 813, Uid: 999, MemcgId: 77, DflCgroupId: 78, StartTime: 5}
	copy(task.Comm[:], "redis-server")
	raw := oomtraceAllocRecord{
		BootNs: 42, Kind: uint32(KindAllocRefused), Syscall: uint32(oomtraceAllocSyscallALLOC_MMAP), Task: task,
		Ret: -12, Request: 1 << 40, TotalVm: 1000, DataVm: 600, StackVm: 33, Count: 17,
	}
	rec, err := DecodeRecord(encodeAlloc(t, raw))
	if err != nil {
		t.Fatal(err)
	}
	a := rec.Alloc
	if rec.Kind != KindAllocRefused || a == nil {
		t.Fatalf("decoded %+v", rec)
	}
	if a.Syscall != SyscallMmap || a.RequestBytes != 1<<40 || a.Ret != -12 || a.Count != 17 || a.BootNs != 42 ||
		a.Task.Pid != 812 || a.Task.Tid != 813 || a.Task.Comm != "redis-server" || a.Task.UID != 999 ||
		a.Task.CgroupID != 77 || a.Task.StartTime != 5 || a.TotalVMPages != 1000 || a.DataPages != 600 {
		t.Errorf("decoded %+v", a)
	}

	// A fork's request is the parent's private writable mappings.
	raw.Syscall, raw.Request = uint32(oomtraceAllocSyscallALLOC_CLONE), 0
	rec, err = DecodeRecord(encodeAlloc(t, raw))
	if err != nil {
		t.Fatal(err)
	}
	if a := rec.Alloc; a.Syscall != SyscallClone || !a.Syscall.ForkLike() || a.RequestBytes != (600+33)*pageSize {
		t.Errorf("clone decoded %+v, want a request of data_vm + stack_vm", a)
	}

	// A thread (CLONE_VM) copies no mm: nothing charged.
	raw.CloneFlags = 0x100 | 0x800
	rec, err = DecodeRecord(encodeAlloc(t, raw))
	if err != nil {
		t.Fatal(err)
	}
	if a := rec.Alloc; !a.Thread || a.RequestBytes != 0 {
		t.Errorf("CLONE_VM clone decoded %+v, want a thread with no request", a)
	}
	raw.CloneFlags = 0
	raw.Syscall = uint32(oomtraceAllocSyscallALLOC_VFORK)
	if rec, _ := DecodeRecord(encodeAlloc(t, raw)); !rec.Alloc.Thread {
		t.Error("a vfork is not a thread of the caller's mm")
	}

	raw.Syscall = 99
	if _, err := DecodeRecord(encodeAlloc(t, raw)); err == nil {
		t.Error("an unknown syscall decoded")
	}
	if _, err := DecodeRecord(encodeAlloc(t, raw)[:40]); err == nil {
		t.Error("a short record decoded")
	}
}

// The join hands refusals over with their wall time and counts them.
func TestJoinAllocRefused(t *testing.T) {
	var got []AllocRefused
	j := NewJoiner(AttachFentry, nil)
	j.OnAllocRefused = func(a AllocRefused) { got = append(got, a) }
	j.Feed(Record{Kind: KindAllocRefused, BootNs: 9, Alloc: &AllocRefused{BootNs: 9, Syscall: SyscallBrk, Count: 1}})
	if len(got) != 1 || got[0].Syscall != SyscallBrk || got[0].Time.IsZero() || j.Stats.AllocRefused != 1 {
		t.Errorf("got %+v, stats %+v", got, j.Stats)
	}
}

// Each syscall's program is in the object, at its exit tracepoint.
func TestAllocProgramsExist(t *testing.T) {
	spec, err := loadOomtrace()
	if err != nil {
		t.Fatal(err)
	}
	for _, sc := range allocSyscalls("amd64") {
		name := "alloc_exit_" + string(sc)
		if p := spec.Programs[name]; p == nil {
			t.Errorf("no program %s", name)
		} else if p.SectionName != "tracepoint/syscalls/sys_exit_"+string(sc) {
			t.Errorf("%s in section %s", name, p.SectionName)
		}
	}
}

// x86 names every syscall the BPF side decodes; arm64 all but fork and
// vfork, which it does not have.
func TestAllocSyscallsPerArch(t *testing.T) {
	amd64 := map[Syscall]bool{}
	for _, s := range allocSyscalls("amd64") {
		amd64[s] = true
	}
	for _, s := range syscallNames {
		if !amd64[s] {
			t.Errorf("amd64 lacks %s", s)
		}
	}
	if len(amd64) != len(syscallNames) {
		t.Errorf("amd64 names %d syscalls, the BPF side %d", len(amd64), len(syscallNames))
	}
	for _, s := range allocSyscalls("arm64") {
		if s == SyscallFork || s == SyscallVfork {
			t.Errorf("arm64 has no %s", s)
		}
	}
	if got := len(allocSyscalls("arm64")); got != len(syscallNames)-2 {
		t.Errorf("arm64 names %d syscalls, want %d", got, len(syscallNames)-2)
	}
}
