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
		"VmSwap:\t       8 kB\nCapEff:\t000001ffffffffff\n"))
	want := Status{Name: "python3", Tgid: 4242, UID: 1000, CapEff: 0x1ffffffffff, HasMM: true,
		Pages: mm.Pages{Anon: 65152 / kb, File: 6620 / kb, Shmem: 4 / kb, Swap: 8 / kb, PgTables: 196 / kb}}
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
