package kallsyms

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A kernel of 1,000 functions 0x100 apart (four blocks of the index), a
// module after it in the file but below it in memory, data symbols, and a
// BPF program: each address is named by the closest text symbol below it,
// within the kernel's text and the module's, and not outside.
func TestIndexLookup(t *testing.T) {
	var b strings.Builder
	const base uint64 = 0xffffffff81000000
	fmt.Fprintf(&b, "%x T _stext\n", uint64(base))
	for i := 1; i < 1000; i++ {
		kind := "t"
		if i%7 == 0 {
			kind = "T"
		}
		fmt.Fprintf(&b, "%x %s fn_%d\n", base+uint64(i)*0x100, kind, i)
		if i%10 == 0 {
			fmt.Fprintf(&b, "%x D data_%d\n", base+uint64(i)*0x100+0x80, i)
		}
	}
	fmt.Fprintf(&b, "%x D _etext\n", base+1000*0x100)
	fmt.Fprintf(&b, "%x t mod_fn\t[mymod]\n", uint64(0xffffffffa0000000))
	fmt.Fprintf(&b, "%x t mod_fn2\t[mymod]\n", uint64(0xffffffffa0000400))
	fmt.Fprintf(&b, "%x t bpf_prog_0123456789abcdef_hook\t[bpf]\n", uint64(0xffffffffc0000000))
	dir := t.TempDir()
	kallsyms, modules := filepath.Join(dir, "kallsyms"), filepath.Join(dir, "modules")
	if err := os.WriteFile(kallsyms, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(modules, []byte("mymod 4096 0 - Live 0xffffffffa0000000\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	x, err := BuildIndex(kallsyms, modules, dir)
	if err != nil {
		t.Fatal(err)
	}
	defer x.Close()
	if left, _ := os.ReadDir(dir); len(left) != 2 {
		t.Errorf("the index left files in its directory: %v", left)
	}
	for _, c := range []struct {
		ip   uint64
		name string // "" for not covered
	}{
		{base, "_stext"},
		{base + 0x1ff, "fn_1"},
		{base + 0x100*255 + 0xff, "fn_255"}, // a block's last
		{base + 0x100*256, "fn_256"},        // the next block's first
		{base + 0x100*500 + 0x90, "fn_500"}, // past a data symbol
		{base + 0x100*999 + 0xff, "fn_999"},
		{base + 0x100*1000, ""}, // _etext: past the kernel's text
		{0xffffffffa0000010, "mod_fn"},
		{0xffffffffa0000fff, "mod_fn2"},
		{0xffffffffa0001000, ""}, // past the module
		{0xffffffffc0000010, ""}, // a BPF program
		{0x10, ""},
	} {
		name, ok, err := x.Lookup(c.ip)
		if err != nil {
			t.Fatal(err)
		}
		if ok != (c.name != "") || name != c.name {
			t.Errorf("%#x: %q, %v; want %q", c.ip, name, ok, c.name)
		}
	}

	// Through a Symbolizer: what the index does not cover is hex, and the
	// file is no longer read.
	s := &Symbolizer{Path: filepath.Join(dir, "gone")}
	s.UseIndex(x)
	got, err := s.Names([]uint64{base + 0x150, 0xffffffffc0000010})
	if err != nil {
		t.Fatal(err)
	}
	if got[0] != "fn_1" || got[1] != "0xffffffffc0000010" {
		t.Errorf("names %q", got)
	}
}

func TestIndexHidden(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "kallsyms")
	if err := os.WriteFile(p, []byte("0000000000000000 T _stext\n0000000000000000 t out_of_memory\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := BuildIndex(p, filepath.Join(dir, "none"), dir); !errors.Is(err, ErrHidden) {
		t.Errorf("error %v, want ErrHidden", err)
	}
}

// The real file, as root: the index names 300 addresses inside the
// kernel's text as a pass over /proc/kallsyms does.
func TestIndexHost(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("/proc/kallsyms shows addresses to root (CAP_SYSLOG) only")
	}
	x, err := BuildIndex("", "", t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer x.Close()
	if len(x.text) == 0 {
		t.Fatal("no kernel text found (_stext, _etext)")
	}
	core := x.text[0]
	ips := make([]uint64, 300)
	for i := range ips {
		ips[i] = core.lo + rand.Uint64N(core.hi-core.lo)
	}
	want, err := (&Symbolizer{}).scan(ips)
	if err != nil {
		t.Fatal(err)
	}
	for _, ip := range ips {
		name, ok, err := x.Lookup(ip)
		if err != nil {
			t.Fatal(err)
		}
		if !ok || name != want[ip] {
			t.Errorf("%#x: index %q (%v), kallsyms %q", ip, name, ok, want[ip])
		}
	}
}

func BenchmarkIndexBuild(b *testing.B) {
	if os.Geteuid() != 0 {
		b.Skip("/proc/kallsyms shows addresses to root only")
	}
	for b.Loop() {
		x, err := BuildIndex("", "", b.TempDir())
		if err != nil {
			b.Fatal(err)
		}
		x.Close()
	}
}
