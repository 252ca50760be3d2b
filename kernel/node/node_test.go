package node

import (
	"os"
	"path/filepath"
	"testing"
)

func writeFile(t *testing.T, path, data string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestReadFixture(t *testing.T) {
	root := t.TempDir()
	for name, v := range map[string]string{
		"overcommit_memory": "2\n", "overcommit_ratio": "80\n", "panic_on_oom": "0\n",
		"oom_kill_allocating_task": "1\n", "oom_dump_tasks": "0\n", "swappiness": "60\n",
	} {
		writeFile(t, filepath.Join(root, "sys/vm", name), v)
	}
	writeFile(t, filepath.Join(root, "meminfo"), "MemTotal:       24576000 kB\nMemFree:  1 kB\nSwapTotal:       1048576 kB\n")
	c, err := Read(root)
	if err != nil {
		t.Fatal(err)
	}
	want := Context{OvercommitMemory: 2, OvercommitRatio: 80, OOMKillAllocatingTask: true, Swappiness: 60,
		MemTotalBytes: 24576000 * 1024, SwapTotalBytes: 1048576 * 1024}
	if c != want {
		t.Fatalf("got %+v, want %+v", c, want)
	}
	if got := c.MachinePages(4096); got != (24576000+1048576)/4 {
		t.Errorf("MachinePages %d", got)
	}
}

func TestReadMissing(t *testing.T) {
	if _, err := Read(t.TempDir()); err == nil {
		t.Fatal("empty proc read without error")
	}
}

// The real /proc of this machine reads cleanly.
func TestReadProc(t *testing.T) {
	c, err := Read("/proc")
	if err != nil {
		t.Fatal(err)
	}
	if c.MemTotalBytes < 64<<20 {
		t.Errorf("MemTotal %d bytes", c.MemTotalBytes)
	}
	// sysinfo(2), used on the real /proc, and /proc/meminfo agree.
	var m Context
	if err := readMeminfo("/proc", &m); err != nil {
		t.Fatal(err)
	}
	if c.MemTotalBytes != m.MemTotalBytes || c.SwapTotalBytes != m.SwapTotalBytes {
		t.Errorf("sysinfo: RAM %d swap %d bytes; meminfo: RAM %d swap %d", c.MemTotalBytes, c.SwapTotalBytes, m.MemTotalBytes, m.SwapTotalBytes)
	}
}

// A global OOM's stat is the node's, under memory.stat's names.
func TestReadMemStat(t *testing.T) {
	dir := t.TempDir()
	meminfo := "MemTotal:       24683784 kB\nBuffers:            1000 kB\nCached:            20000 kB\nAnonPages:         30000 kB\n" +
		"Shmem:               400 kB\nSlab:                500 kB\nKernelStack:          60 kB\nPageTables:           70 kB\n" +
		"Percpu:                8 kB\nDirty:                 9 kB\nWriteback:             0 kB\nHugePages_Total:       0\n"
	if err := os.WriteFile(filepath.Join(dir, "meminfo"), []byte(meminfo), 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := ReadMemStat(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	kb := func(p *int64) int64 {
		if p == nil {
			return -1
		}
		return *p >> 10
	}
	if kb(s.Anon) != 30000 || kb(s.File) != 21000 || kb(s.Kernel) != 500+60+70+8 || kb(s.Slab) != 500 || kb(s.Shmem) != 400 ||
		kb(s.FileDirty) != 9 || kb(s.FileWriteback) != 0 || s.Sock != nil {
		t.Errorf("node stat kB: anon %d file %d kernel %d slab %d shmem %d dirty %d wb %d sock %v", kb(s.Anon), kb(s.File),
			kb(s.Kernel), kb(s.Slab), kb(s.Shmem), kb(s.FileDirty), kb(s.FileWriteback), s.Sock)
	}
}
