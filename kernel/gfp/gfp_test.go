package gfp

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// The kmem:mm_page_alloc formats of the matrix kernels and the host,
// copied from their tracefs: 5.10 and 6.1 spell the bits as hex literals,
// 6.12 and 6.18 as shifts of 1UL.
func formats(t *testing.T) map[string]string {
	t.Helper()
	files, err := filepath.Glob("testdata/mm_page_alloc-*.format")
	if err != nil || len(files) == 0 {
		t.Fatalf("no testdata formats: %v", err)
	}
	out := map[string]string{}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		out[strings.TrimSuffix(strings.TrimPrefix(filepath.Base(f), "mm_page_alloc-"), ".format")] = string(data)
	}
	return out
}

// What every one of these kernels defines alike (include/linux/gfp.h,
// gfp_types.h): the reclaim bits and GFP_KERNEL made of them.
func TestParseFormatOfEachKernel(t *testing.T) {
	for kernel, format := range formats(t) {
		tab, err := ParseFormat(format)
		if err != nil {
			t.Errorf("%s: %v", kernel, err)
			continue
		}
		mask := func(name string) uint32 {
			m, ok := tab.Mask(name)
			if !ok {
				t.Errorf("%s: no %s in %d entries", kernel, name, len(tab))
			}
			return m
		}
		io, fs, direct, kswapd := mask("__GFP_IO"), mask("__GFP_FS"), mask("__GFP_DIRECT_RECLAIM"), mask("__GFP_KSWAPD_RECLAIM")
		for _, bit := range []uint32{io, fs, direct, kswapd} {
			if bit == 0 || bit&(bit-1) != 0 {
				t.Errorf("%s: a single-bit flag reads %#x", kernel, bit)
			}
		}
		if got, want := mask("GFP_KERNEL"), direct|kswapd|io|fs; got != want {
			t.Errorf("%s: GFP_KERNEL = %#x, want __GFP_RECLAIM|__GFP_IO|__GFP_FS = %#x", kernel, got, want)
		}
		if tab[0].Name != "GFP_TRANSHUGE" {
			t.Errorf("%s: the table starts with %s, not the widest composite GFP_TRANSHUGE", kernel, tab[0].Name)
		}
	}
}

// Names as the kernel prints them in "invoked oom-killer: gfp_mask=...":
// values from these kernels' own logs.
func TestNamesAsTheKernelPrints(t *testing.T) {
	f := formats(t)
	for _, tc := range []struct {
		kernel string
		mask   uint32
		want   string
	}{
		{"5.10.218", 0xcc0, "GFP_KERNEL"},
		{"6.1.192", 0xcc0, "GFP_KERNEL"},
		{"6.12.117", 0xcc0, "GFP_KERNEL"},
		{"6.18.44", 0xcc0, "GFP_KERNEL"},
		{"6.1.192", 0x100cca, "GFP_HIGHUSER_MOVABLE"},
		{"6.1.192", 0x140cca, "GFP_HIGHUSER_MOVABLE|__GFP_COMP"},
		{"5.10.218", 0x100cca, "GFP_HIGHUSER_MOVABLE"},
	} {
		tab, err := ParseFormat(f[tc.kernel])
		if err != nil {
			t.Fatalf("%s: %v", tc.kernel, err)
		}
		if got := strings.Join(tab.Names(tc.mask), "|"); got != tc.want {
			t.Errorf("%s: Names(%#x) = %q, want %q", tc.kernel, tc.mask, got, tc.want)
		}
	}
}

func TestNamesLeftover(t *testing.T) {
	tab := Table{{"A", 0x3}, {"B", 0x1}, {"C", 0x4}}
	if got := tab.Names(0x3 | 0x8); !slices.Equal(got, []string{"A", "0x8"}) {
		t.Errorf("Names(0xb) = %q: A takes its bits first, B none left, the rest in hex", got)
	}
	if got := tab.Names(0); got != nil {
		t.Errorf("Names(0) = %q, want none (the kernel prints nothing)", got)
	}
}

func TestEval(t *testing.T) {
	for expr, want := range map[string]uint64{
		"(( gfp_t)0x40u)":                     0x40,
		"(unsigned long)(0x400u|0x800u)":      0xc00,
		"((((1UL))) << (10))":                 0x400,
		"((0x7u) & ~(( gfp_t)0x2u))":          0x5,
		"(( gfp_t)((((1UL))) << (6))) | 0x1u": 0x41,
		"0x6 ^ 0x3":                           0x5,
	} {
		got, err := eval(expr)
		if err != nil || got != want {
			t.Errorf("eval(%q) = %#x, %v; want %#x", expr, got, err, want)
		}
	}
	for _, bad := range []string{"", "(0x1", "0x1 +", "0x1 | foo", "\"x\""} {
		if v, err := eval(bad); err == nil {
			t.Errorf("eval(%q) = %#x, want an error", bad, v)
		}
	}
}

func TestParseFormatRefusesOthers(t *testing.T) {
	if _, err := ParseFormat(`print fmt: "pid=%d", REC->pid`); err == nil {
		t.Error("a format without gfp flags parsed")
	}
}

// The running kernel's own table. tracefs is mounted here for the test
// when it is not (the tracer's own tests need it too), and unmounted after.
func TestLoadOnThisKernel(t *testing.T) {
	if _, err := os.Stat(formatPaths[0]); err != nil {
		if os.Geteuid() != 0 {
			t.Skipf("tracefs is not mounted and mounting it needs root: %v", err)
		}
		if err := unix.Mount("nodev", "/sys/kernel/tracing", "tracefs", 0, ""); err != nil {
			t.Fatalf("mounting tracefs: %v", err)
		}
		t.Cleanup(func() { _ = unix.Unmount("/sys/kernel/tracing", 0) })
	}
	tab, err := Load()
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(tab.Names(0xcc0), "|"); got != "GFP_KERNEL" {
		t.Errorf("this kernel names 0xcc0 %q, want GFP_KERNEL", got)
	}
}
