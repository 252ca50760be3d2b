package kallsyms

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

func writeFile(t *testing.T, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "kallsyms")
	if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// Addresses are named by the closest text symbol at or below them, across
// a file that is not sorted (a module's symbols after the kernel's), data
// symbols ignored, and names kept: a second call reads nothing.
func TestNames(t *testing.T) {
	p := writeFile(t, `ffffffff81000000 T _stext
ffffffff81100000 t out_of_memory
ffffffff81100400 D some_data
ffffffff81100800 T mem_cgroup_out_of_memory
ffffffffc0000000 t mod_alloc	[mymod]
ffffffff81200000 W weak_fn
`)
	s := &Symbolizer{Path: p}
	got, err := s.Names([]uint64{0xffffffff81100010, 0xffffffff81100500, 0xffffffff81100900, 0xffffffffc0000010, 0xffffffff81200001, 0x10})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"out_of_memory", "out_of_memory", "mem_cgroup_out_of_memory", "mod_alloc", "weak_fn", "0x10"}
	if !slices.Equal(got, want) {
		t.Errorf("names %q, want %q", got, want)
	}
	if err := os.Remove(p); err != nil {
		t.Fatal(err)
	}
	again, err := s.Names([]uint64{0xffffffff81100010})
	if err != nil || !slices.Equal(again, want[:1]) {
		t.Errorf("cached name %q, %v: want %q without reading the file", again, err, want[:1])
	}
}

// Without CAP_SYSLOG (or with kptr_restrict=2) every address reads 0: said
// so, not named "0x...".
func TestNamesHidden(t *testing.T) {
	p := writeFile(t, "0000000000000000 T _stext\n0000000000000000 t out_of_memory\n")
	_, err := (&Symbolizer{Path: p}).Names([]uint64{0xffffffff81100010})
	if !errors.Is(err, ErrHidden) {
		t.Errorf("error %v, want ErrHidden", err)
	}
}

// The real file, as root: a kernel function's own address names it.
func TestNamesHost(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("/proc/kallsyms shows addresses to root (CAP_SYSLOG) only")
	}
	s := &Symbolizer{}
	addr, ok := lookup(t, "out_of_memory")
	if !ok {
		t.Skip("this kernel has no out_of_memory in /proc/kallsyms")
	}
	got, err := s.Names([]uint64{addr + 1})
	if err != nil {
		t.Fatal(err)
	}
	if got[0] != "out_of_memory" {
		t.Errorf("out_of_memory+1 named %q", got[0])
	}
}

func lookup(t *testing.T, name string) (uint64, bool) {
	t.Helper()
	data, err := os.ReadFile("/proc/kallsyms")
	if err != nil {
		t.Fatal(err)
	}
	for len(data) > 0 {
		line := data
		if i := slices.Index(data, '\n'); i >= 0 {
			line, data = data[:i+1], data[i+1:]
		} else {
			data = nil
		}
		if addr, n, ok := parseLine(line); ok && string(n) == name {
			return addr, true
		}
	}
	return 0, false
}
