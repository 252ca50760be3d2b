package tracer

import (
	"encoding/binary"
	"slices"
	"testing"
)

func stackRec(tid uint32, seq uint64, ips ...uint64) Record {
	return Record{Kind: KindStack, Seq: seq, Trigger: Process{Tid: tid}, Stack: &KernelStack{IPs: ips}}
}

// A decision's stack comes just before its begin record and goes with its
// kill; a mark-only kill takes the stack sent just before its mark; a
// stack of another thread or decision is nobody else's.
func TestJoinStacks(t *testing.T) {
	b := &seqBuilder{}
	b.add(stackRec(trigger.Tid, 1, 0xa, 0xb)).add(stackRec(999, 2, 0xdead)).
		add(begin(1, trigger, hog, 7)).add(mark(1, trigger, hog)).add(end(1))
	kills, _ := run(AttachFentry, b.recs)
	if len(kills) != 1 || kills[0].TriggerStack == nil || !slices.Equal(kills[0].TriggerStack.IPs, []uint64{0xa, 0xb}) {
		t.Fatalf("hooked kill %+v: want the stack of thread %d, decision 1", kills, trigger.Tid)
	}

	b = &seqBuilder{}
	b.add(stackRec(trigger.Tid, 0, 0xc)).add(Record{Kind: KindMark, Trigger: trigger, Task: hog}).
		// A second mark of the same process (a dying thread) sent no
		// stack of its own: it is no kill, and takes nobody's.
		add(Record{Kind: KindMark, Trigger: trigger, Task: hogT2}).
		add(Record{Kind: KindMark, Trigger: Process{Pid: 200, Tid: 201}, Task: other})
	kills, _ = run(AttachMarkVictimOnly, b.recs)
	if len(kills) != 2 {
		t.Fatalf("%d mark-only kills, want 2", len(kills))
	}
	if s := kills[0].TriggerStack; s == nil || !slices.Equal(s.IPs, []uint64{0xc}) {
		t.Errorf("mark-only kill's stack %+v, want the one sent before its mark", s)
	}
	if s := kills[1].TriggerStack; s != nil {
		t.Errorf("a kill whose stack was lost took %+v", s)
	}
}

// Stacks whose records never came are dropped, oldest first: the join
// keeps a bounded few.
func TestJoinStacksBounded(t *testing.T) {
	j := NewJoiner(AttachFentry, func(Kill) {})
	for i := range 10 * maxPendingStacks {
		j.Feed(stackRec(uint32(i), uint64(i)))
	}
	if len(j.stacks) != maxPendingStacks {
		t.Errorf("%d stacks kept, want at most %d", len(j.stacks), maxPendingStacks)
	}
	if j.takeStack(0, 0) != nil || j.takeStack(uint32(10*maxPendingStacks-1), uint64(10*maxPendingStacks-1)) == nil {
		t.Error("the oldest stack was kept, or the newest dropped")
	}
}

func TestDecodeStack(t *testing.T) {
	raw := oomtraceStackRecord{BootNs: 5, Seq: 3, Kind: uint32(KindStack), Tid: 42, Len: 3 * 8}
	raw.Ips[0], raw.Ips[1], raw.Ips[2], raw.Ips[3] = 0x1, 0x2, 0x3, 0x4
	buf, err := binary.Append(nil, binary.NativeEndian, raw)
	if err != nil {
		t.Fatal(err)
	}
	rec, err := DecodeRecord(buf)
	if err != nil {
		t.Fatal(err)
	}
	if rec.Kind != KindStack || rec.Seq != 3 || rec.Trigger.Tid != 42 || rec.Stack == nil || !slices.Equal(rec.Stack.IPs, []uint64{1, 2, 3}) {
		t.Errorf("decoded %+v (stack %+v)", rec, rec.Stack)
	}
	raw.Len = -14 // EFAULT
	buf, _ = binary.Append(nil, binary.NativeEndian, raw)
	if rec, err = DecodeRecord(buf); err != nil || rec.Stack.Err == "" || len(rec.Stack.IPs) != 0 {
		t.Errorf("a failed bpf_get_stack decoded %+v, %v: want its error", rec.Stack, err)
	}
	// An arm64 kprobe's walk skipped the caller, in the link register.
	raw.Len, raw.EntryLr = 2*8, 0x9
	buf, _ = binary.Append(nil, binary.NativeEndian, raw)
	if rec, err = DecodeRecord(buf); err != nil || !slices.Equal(rec.Stack.IPs, []uint64{1, 9, 2}) {
		t.Errorf("entry LR: decoded %+v, %v: want it second", rec.Stack, err)
	}
	raw.EntryLr = 0x2 // already walked
	buf, _ = binary.Append(nil, binary.NativeEndian, raw)
	if rec, err = DecodeRecord(buf); err != nil || !slices.Equal(rec.Stack.IPs, []uint64{1, 2}) {
		t.Errorf("entry LR already in the stack: decoded %+v, %v", rec.Stack, err)
	}
	if _, err := DecodeRecord(buf[:20]); err == nil {
		t.Error("a short stack record decoded")
	}
}
