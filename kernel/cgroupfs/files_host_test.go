package cgroupfs_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/oomtrace/oomtrace/internal/kfile"
	"github.com/oomtrace/oomtrace/internal/oomtest"
	"github.com/oomtrace/oomtrace/kernel/cgroupfs"
)

// The table against this machine's kernel: what it names is in a fresh
// memcg, what only the other version has is not, and the keys read from
// memory.stat and the events file are there.
func TestFilesOnHost(t *testing.T) {
	oomtest.RequireRoot(t)
	h := oomtest.MustHierarchy(t)
	cg := oomtest.NewCgroup(t, h, nil, "files", 64<<20)
	f, other := h.Files(), cgroupfs.Hierarchy{V2: !h.V2}.Files()
	// Kernel options and versions may leave these out.
	optional := map[string]bool{
		"memory.memsw.limit_in_bytes": true,                              // v1 with swap accounting
		"memory.swap.max":             true, "memory.swap.current": true, // v2 with CONFIG_MEMCG_SWAP
		"memory.peak": true, // v2, 5.19+
	}
	own := map[string]bool{}
	for _, name := range []string{f.Limit, f.High, f.Usage, f.MaxUsage, f.SwapLimit, f.SwapUsage, f.MemswLimit, f.Swappiness, f.Events, f.Stat} {
		if name == "" {
			continue
		}
		own[name] = true
		if _, err := os.Stat(filepath.Join(cg.Path, name)); err != nil && !optional[name] {
			t.Errorf("v2=%t: %s: %v", h.V2, name, err)
		}
	}
	for _, name := range []string{other.Limit, other.High, other.Usage, other.MaxUsage, other.SwapLimit, other.SwapUsage, other.MemswLimit, other.Swappiness, other.Events} {
		if name == "" || own[name] {
			continue
		}
		if _, err := os.Stat(filepath.Join(cg.Path, name)); err == nil {
			t.Errorf("v2=%t: %s exists, yet the table says this version has no such file", h.V2, name)
		}
	}
	for file, key := range map[string]string{f.Stat: f.InactiveFile, f.Events: "oom_kill"} {
		data, err := os.ReadFile(filepath.Join(cg.Path, file))
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := kfile.Keyed(data, key); !ok {
			t.Errorf("no %s in %s:\n%s", key, file, data)
		}
	}
}

// A memory cgroup's stat read through a descriptor kept open follows the
// kernel's counters, and once the cgroup is removed and made again under
// the same path, the new one is read, not an error.
func TestOpenFilesOnHost(t *testing.T) {
	oomtest.RequireRoot(t)
	h := oomtest.MustHierarchy(t)
	cg := oomtest.NewCgroup(t, h, nil, "openfiles", 64<<20)
	var o cgroupfs.OpenFiles
	defer o.Close()
	hh := cgroupfs.Hierarchy(h)
	buf := make([]byte, 16<<10)
	if _, err := hh.ReadMemStat(&o, cg.Path, buf); err != nil {
		t.Fatal(err)
	}
	if _, err := hh.ReadMemEvents(&o, cg.Path, buf); err != nil {
		t.Fatal(err)
	}
	if o.Len() == 0 {
		t.Fatal("no file kept open")
	}
	if err := os.Remove(cg.Path); err != nil {
		t.Fatal(err)
	}
	if _, err := hh.ReadMemStat(&o, cg.Path, buf); err == nil {
		t.Error("a removed cgroup's stat read without error")
	}
	if err := os.Mkdir(cg.Path, 0o755); err != nil {
		t.Fatal(err)
	}
	s, err := hh.ReadMemStat(&o, cg.Path, buf)
	if err != nil {
		t.Fatalf("the cgroup made again: %v", err)
	}
	if s.Anon == nil || *s.Anon != 0 {
		t.Errorf("the new cgroup's anon %v, want 0", s.Anon)
	}
}
