package procfs

import (
	"os"
	"testing"

	"github.com/oomtrace/oomtrace/kernel/mm"
)

func TestParseStatus(t *testing.T) {
	kb := uint64(os.Getpagesize()) / 1024
	s := ParseStatus([]byte("Name:\tpython3\nUmask:\t0022\nState:\tR (running)\nTgid:\t4242\nPid:\t4243\n" +
		"Uid:\t1000\t0\t0\t0\nVmPTE:\t     196 kB\nRssAnon:\t   65152 kB\nRssFile:\t    6620 kB\nRssShmem:\t       4 kB\n" +
		"VmSwap:\t       8 kB\nCapEff:\t000001ffffffffff\nVmHWM:\t   80000 kB\nVmRSS:\t   71776 kB\n" +
		"voluntary_ctxt_switches:\t12\nnonvoluntary_ctxt_switches:\t3\n"))
	want := Status{Name: "python3", Tgid: 4242, UID: 1000, CapEff: 0x1ffffffffff, HasMM: true,
		Pages: mm.Pages{Anon: 65152 / kb, File: 6620 / kb, Shmem: 4 / kb, Swap: 8 / kb, PgTables: 196 / kb},
		RSSKB: 71776, HWMKB: 80000, CtxtSwitches: 15}
	if s != want {
		t.Fatalf("got %+v\nwant %+v", s, want)
	}
	if !s.Has(CapBPF) || !s.Has(CapSysAdmin) {
		t.Error("capabilities of a full set not seen")
	}
	if k := ParseStatus([]byte("Name:\tkthreadd\nTgid:\t2\n")); k.HasMM {
		t.Error("a kernel thread has an mm")
	}
}

func TestReadStatusOfSelf(t *testing.T) {
	s, err := ReadStatus(0)
	if err != nil {
		t.Fatal(err)
	}
	if int(s.Tgid) != os.Getpid() || !s.HasMM || s.Pages.Anon == 0 {
		t.Errorf("self: %+v", s)
	}
}

func TestNumber(t *testing.T) {
	adj, err := ReadNumber(os.Getpid(), "oom_score_adj")
	if err != nil {
		t.Fatal(err)
	}
	if adj < -1000 || adj > 1000 {
		t.Errorf("oom_score_adj %d out of the kernel's range", adj)
	}
	if n, err := ParseNumber([]byte("-998\n")); err != nil || n != -998 {
		t.Errorf("ParseNumber(-998) = %d, %v", n, err)
	}
	if _, err := ParseNumber([]byte("max\n")); err == nil {
		t.Error("a word parsed as a number")
	}
	if _, err := ReadNumber(1<<30, "oom_score"); err == nil {
		t.Error("a pid that cannot exist was read")
	}
}
