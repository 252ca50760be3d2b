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
