package daemon

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/oomtrace/oomtrace/enrich"
	"github.com/oomtrace/oomtrace/event"
	"github.com/oomtrace/oomtrace/kernel/commit"
	"github.com/oomtrace/oomtrace/tracer"
	"github.com/rs/zerolog"
)

// Refusals come as records at most every 10 ms, each with the count so
// far, and the BPF map counts the rest: a key's first record is a line at
// once, the rest of its second one line when it ends, with what the map
// counted after the last record; every refusal counts once, none twice.
func TestAllocRefusalsAggregate(t *testing.T) {
	bpf := map[allocKey]uint64{}
	var counted uint64
	alive := map[uint32]bool{7: true, 9: true}
	a := newAllocRefusals(func(k allocKey) (uint64, bool) { n, ok := bpf[k]; return n, ok },
		func(r refusal, n uint64) { counted += n })
	a.alive = func(k allocKey) bool { return alive[k.pid] }
	t0 := time.Unix(1000, 0)
	// The records' boot clock moves with the wall clock the test passes.
	var bootMs int
	boot := func(ms int) uint64 { return uint64(1e12 + ms*1e6) }
	a.bootNow = func() uint64 { return boot(bootMs) }
	at := func(ms int) time.Time { bootMs = ms; return t0.Add(time.Duration(ms) * time.Millisecond) }
	rec := func(pid uint32, sc tracer.Syscall, count uint64) refusal {
		k := allocKey{pid, 1, sc}
		bpf[k] = count
		return refusal{AllocRefused: tracer.AllocRefused{Syscall: sc, Task: tracer.Task{Process: tracer.Process{Pid: pid}, StartTime: 1}, Count: count, BootNs: boot(bootMs)}}
	}
	mmap7 := allocKey{7, 1, tracer.SyscallMmap}

	if l, ok := a.add(rec(7, tracer.SyscallMmap, 1), at(0)); !ok || l.Repeats != 1 {
		t.Fatalf("first refusal: %+v %t, want a line of 1 at once", l, ok)
	}
	// 99 more records of a tight loop, 10 ms apart, 50 refusals each.
	for i := 1; i <= 99; i++ {
		if l, ok := a.add(rec(7, tracer.SyscallMmap, uint64(1+50*i)), at(10*i)); ok {
			t.Fatalf("record %d within the second made a line: %+v", i, l)
		}
	}
	// Another syscall of the same process is its own key.
	if l, ok := a.add(rec(7, tracer.SyscallBrk, 1), at(995)); !ok || l.Repeats != 1 {
		t.Fatalf("brk's first refusal: %+v %t", l, ok)
	}
	// After the last record, the map counted 30 more.
	bpf[mmap7] += 30
	due := a.due(at(1000))
	if len(due) != 1 || due[0].Syscall != tracer.SyscallMmap || due[0].Repeats != 99*50+30 {
		t.Fatalf("at the end of the second: %+v, want mmap's %d", due, 99*50+30)
	}
	// Stale records (their counts accounted already) add nothing: one with
	// the count the map gave, and one sent before the map was read that the
	// writer takes only now, its count below (not a restarted count).
	if _, ok := a.add(refusal{AllocRefused: tracer.AllocRefused{Syscall: tracer.SyscallMmap, Task: tracer.Task{Process: tracer.Process{Pid: 7}, StartTime: 1}, Count: 4981, BootNs: boot(1000)}}, at(1100)); ok {
		t.Error("a stale record made a line")
	}
	if _, ok := a.add(refusal{AllocRefused: tracer.AllocRefused{Syscall: tracer.SyscallMmap, Task: tracer.Task{Process: tracer.Process{Pid: 7}, StartTime: 1}, Count: 4000, BootNs: boot(900)}}, at(1150)); ok {
		t.Error("a record sent before the map's read made a line")
	}
	// Quiet windows: idle, no line, no wake-up; forgotten once the process is gone.
	if due := a.due(at(2000)); len(due) != 0 {
		t.Errorf("a quiet second made lines: %+v", due)
	}
	if !a.next().IsZero() {
		t.Errorf("idle keys still wake the writer at %v", a.next().Sub(t0))
	}
	delete(alive, 7)
	a.due(at(2100))
	if len(a.keys) != 0 {
		t.Errorf("%d keys kept for a process gone", len(a.keys))
	}
	if want := uint64(1 + 99*50 + 30 + 1); counted != want {
		t.Errorf("counted %d refusals, want %d", counted, want)
	}

	// An idle key that is refused again makes a line at once; the map
	// entry restarted (aged out): its whole count is new.
	alive[9] = true
	a.add(rec(9, tracer.SyscallFork, 5), at(3000))
	a.due(at(4000))
	a.due(at(5000))
	if l, ok := a.add(rec(9, tracer.SyscallFork, 2), at(5500)); !ok || l.Repeats != 2 {
		t.Errorf("after idling and a restarted count: %+v %t", l, ok)
	}
	bpf[allocKey{9, 1, tracer.SyscallFork}] = 6
	if all := a.all(at(5600)); len(all) != 1 || all[0].Repeats != 4 {
		t.Errorf("at shutdown: %+v, want the 4 the map counted", all)
	}
}

func writeProc(t *testing.T, root string, files map[string]string) {
	t.Helper()
	for name, data := range files {
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// From synthetic /proc values: a strict-mode fork, its numbers in the line.
func TestClassifyStrictFork(t *testing.T) {
	root := t.TempDir()
	writeProc(t, root, map[string]string{
		"sys/vm/overcommit_memory": "2\n", "sys/vm/overcommit_ratio": "10\n", "sys/vm/overcommit_kbytes": "0\n",
		"sys/vm/admin_reserve_kbytes": "8192\n", "sys/vm/user_reserve_kbytes": "131072\n",
		"meminfo": "MemTotal: 1000000 kB\nSwapTotal: 0 kB\nCommitLimit: 100000 kB\nCommitted_AS: 90000 kB\n",
	})
	c := newClassifier()
	c.procRoot, c.pageSize = root, 4096
	c.limits = func(int) (commit.Limits, error) {
		return commit.Limits{AS: commit.Unlimited, Data: commit.Unlimited}, nil
	}
	c.privileged = func(int) bool { return true }
	a := tracer.AllocRefused{Syscall: tracer.SyscallFork, Task: tracer.Task{Process: tracer.Process{Pid: 1, Comm: "big"}},
		RequestBytes: 300 << 20, DataPages: (300 << 20) / 4096, TotalVMPages: (320 << 20) / 4096, Count: 1}
	r := c.classify(a)
	if r.decision.Rule != commit.RuleStrict {
		t.Fatalf("rule %s, want strict", r.decision.Rule)
	}
	ev := allocEvent(allocLine{refusal: r, Repeats: 1}, enrich.AllocResult{}, 4096)
	cm := ev.Commit
	if ev.Rule != "strict" || *cm.Mode != 2 || *cm.Ratio != 10 || *cm.LimitBytes != 100000<<10 || *cm.CommittedBytes != 90000<<10 ||
		cm.RequestBytes != 300<<20 || *cm.ReserveBytes != min(uint64(320<<20)/32, 131072<<10) || cm.RlimitAS != nil {
		t.Errorf("line's commit %+v", cm)
	}
	if *cm.CommittedBytes+cm.RequestBytes <= *cm.LimitBytes-*cm.ReserveBytes {
		t.Error("the numbers do not add up to a refusal")
	}

	// A thread (CLONE_VM) copies and charges nothing: no commit rule.
	th := a
	th.Syscall, th.Thread, th.RequestBytes = tracer.SyscallClone, true, 0
	if r := c.classify(th); r.decision.Rule != commit.RuleOther {
		t.Errorf("a refused thread: %s, want other", r.decision.Rule)
	}

	// The same request under RLIMIT_AS, as an mmap: rlimit_as, checked first.
	c.limits = func(int) (commit.Limits, error) { return commit.Limits{AS: 256 << 20, Data: commit.Unlimited}, nil }
	a.Syscall = tracer.SyscallMmap
	if r := c.classify(a); r.decision.Rule != commit.RuleRlimitAS {
		t.Errorf("mmap past RLIMIT_AS: %s", r.decision.Rule)
	}
	// mremap weighs only its growth.
	c.limits = func(int) (commit.Limits, error) {
		return commit.Limits{AS: commit.Unlimited, Data: commit.Unlimited}, nil
	}
	a.Syscall, a.RequestBytes, a.OldLen = tracer.SyscallMremap, 300<<20, 290<<20
	if got := chargedBytes(a); got != 10<<20 {
		t.Errorf("an mremap from 290 to 300 MiB charges %d bytes, want its growth", got)
	}
}

// The node's accounting is read once per accountingTTL, not per refusal.
func TestClassifierCachesAccounting(t *testing.T) {
	root := t.TempDir()
	files := map[string]string{
		"sys/vm/overcommit_memory": "0\n", "sys/vm/overcommit_ratio": "50\n", "sys/vm/overcommit_kbytes": "0\n",
		"sys/vm/admin_reserve_kbytes": "8192\n", "sys/vm/user_reserve_kbytes": "131072\n",
		"meminfo": "MemTotal: 1000000 kB\nSwapTotal: 0 kB\nCommitLimit: 500000 kB\nCommitted_AS: 1 kB\n",
	}
	writeProc(t, root, files)
	now := time.Unix(0, 0)
	c := newClassifier()
	c.procRoot, c.now = root, func() time.Time { return now }
	if a, _ := c.accounting(); a.CommittedBytes != 1<<10 {
		t.Fatalf("%+v", a)
	}
	files["meminfo"] = "MemTotal: 1000000 kB\nSwapTotal: 0 kB\nCommitLimit: 500000 kB\nCommitted_AS: 2 kB\n"
	writeProc(t, root, files)
	if a, _ := c.accounting(); a.CommittedBytes != 1<<10 {
		t.Error("read again within the TTL")
	}
	now = now.Add(accountingTTL)
	if a, _ := c.accounting(); a.CommittedBytes != 2<<10 {
		t.Error("not read again after the TTL")
	}
}

// --format console writes an alloc_refused line as its sentence.
func TestConsoleAllocRefused(t *testing.T) {
	var buf bytes.Buffer
	log := newLogger(Config{Format: "console"}, &buf, false)
	r := refusal{AllocRefused: tracer.AllocRefused{Time: time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC), Syscall: tracer.SyscallMmap,
		Task: tracer.Task{Process: tracer.Process{Pid: 9, Comm: "big"}}, RequestBytes: 1 << 40},
		decision: commit.Decision{Rule: commit.RuleHeuristic},
		acct:     &commit.Accounting{MemTotalBytes: 8 << 30}}
	event.Write(log, zerolog.WarnLevel, allocEvent(allocLine{refusal: r, Repeats: 1}, enrich.AllocResult{}, 4096))
	want := "2026-12-01T12:00:00.000Z mmap of big[9] refused: heuristic overcommit, 1024.0 GiB > 8.0 GiB RAM + 0 KiB swap\n"
	if buf.String() != want {
		t.Errorf("console:\n got %q\nwant %q", buf.String(), want)
	}
}
