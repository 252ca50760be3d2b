package tracer

import (
	"os"
	"testing"

	"github.com/cilium/ebpf/btf"
)

// specOf builds a BTF spec holding just the given types, as a kernel's would.
func specOf(t *testing.T, types ...btf.Type) *btf.Spec {
	t.Helper()
	b, err := btf.NewBuilder(types, nil)
	if err != nil {
		t.Fatal(err)
	}
	spec, err := b.Spec()
	if err != nil {
		t.Fatal(err)
	}
	return spec
}

// btfTrace is the typedef the kernel declares for a raw tracepoint:
// btf_trace_<name> = void (*)(void *__data, args...).
func btfTrace(name string, args ...btf.Type) *btf.Typedef {
	params := []btf.FuncParam{{Name: "__data", Type: &btf.Pointer{Target: &btf.Void{}}}}
	for _, a := range args {
		params = append(params, btf.FuncParam{Type: a})
	}
	return &btf.Typedef{Name: "btf_trace_" + name, Type: &btf.Pointer{
		Target: &btf.FuncProto{Return: &btf.Void{}, Params: params},
	}}
}

func TestMarkVictimLayoutFromPrototype(t *testing.T) {
	task := &btf.Struct{Name: "task_struct", Size: 8}
	intT := &btf.Int{Name: "int", Size: 4, Encoding: btf.Signed}
	uid := &btf.Typedef{Name: "uid_t", Type: &btf.Int{Name: "unsigned int", Size: 4}}
	for _, c := range []struct {
		name string
		args []btf.Type
		want MarkLayout
	}{
		{"2024 prototype: task, uid", []btf.Type{&btf.Pointer{Target: task}, uid}, MarkLayoutTask},
		{"before 2024: int pid", []btf.Type{intT}, MarkLayoutPid},
		{"pid behind a typedef", []btf.Type{&btf.Typedef{Name: "pid_t", Type: intT}}, MarkLayoutPid},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := markVictimLayout(specOf(t, btfTrace("mark_victim", c.args...)))
			if err != nil || got != c.want {
				t.Fatalf("got %q, %v; want %q", got, err, c.want)
			}
		})
	}
	// Anything else is refused with a reason, not guessed.
	if got, err := markVictimLayout(specOf(t, btfTrace("mark_victim", &btf.Pointer{Target: &btf.Struct{Name: "mm_struct"}}))); err == nil {
		t.Errorf("a pointer to mm_struct gave layout %q", got)
	}
	if got, err := markVictimLayout(specOf(t, intT)); err == nil {
		t.Errorf("no btf_trace_mark_victim gave layout %q", got)
	}
}

func TestTracepointRecordLayout(t *testing.T) {
	intT := &btf.Int{Name: "int", Size: 4, Encoding: btf.Signed}
	ulong := &btf.Int{Name: "unsigned long", Size: 8}
	old := &btf.Struct{Name: "trace_event_raw_mark_victim", Size: 16, Members: []btf.Member{
		{Name: "pid", Type: intT, Offset: 64},
	}}
	if got := recordLayout(specOf(t, old)); got != MarkLayoutPid {
		t.Errorf("pre-2024 record: %q", got)
	}
	new := &btf.Struct{Name: "trace_event_raw_mark_victim", Size: 32, Members: []btf.Member{
		{Name: "pid", Type: intT, Offset: 64},
		{Name: "anon_rss", Type: ulong, Offset: 128},
	}}
	if got := recordLayout(specOf(t, new)); got != MarkLayoutPidFields {
		t.Errorf("2024 record: %q", got)
	}
}

// This machine's own kernel, where it has BTF: one of the known layouts.
func TestMarkVictimLayoutOfThisKernel(t *testing.T) {
	if _, err := os.Stat("/sys/kernel/btf/vmlinux"); err != nil {
		t.Skip("no kernel BTF on this machine: nothing to read the layout from")
	}
	spec, err := btf.LoadKernelSpec()
	if err != nil {
		t.Fatal(err)
	}
	got, err := markVictimLayout(spec)
	if err != nil {
		t.Fatal(err)
	}
	if got != MarkLayoutTask && got != MarkLayoutPid {
		t.Fatalf("layout %q", got)
	}
	t.Logf("tp_btf/mark_victim here gives: %s; the classic tracepoint: %s", got, recordLayout(spec))
}
