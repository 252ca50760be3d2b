package rank

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"strconv"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// A kept file is read anew each time, and a process that exited is dropped.
func TestProcFilesReadFreshAndDropExited(t *testing.T) {
	cmd := exec.Command("sleep", "60")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	pid := cmd.Process.Pid

	files := NewProcFiles()
	defer files.Close()
	r := newReader()
	status, adj, err := files.read(r, "/proc", pid)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(status, []byte("Name:\tsleep")) || string(bytes.TrimSpace(adj)) != "0" {
		t.Fatalf("status %q..., oom_score_adj %q", status[:min(40, len(status))], adj)
	}
	if files.Len() != 1 {
		t.Fatalf("%d processes kept, want 1", files.Len())
	}

	// Raising a process's oom_score_adj needs no privilege.
	if err := os.WriteFile("/proc/"+strconv.Itoa(pid)+"/oom_score_adj", []byte("321"), 0); err != nil {
		t.Fatal(err)
	}
	if _, adj, err = files.read(r, "/proc", pid); err != nil || string(bytes.TrimSpace(adj)) != "321" {
		t.Fatalf("second read: oom_score_adj %q, %v; want 321, from the same kept file", adj, err)
	}

	_ = cmd.Process.Kill()
	_ = cmd.Wait() // reaped: the task is gone
	_, _, err = files.read(r, "/proc", pid)
	if !errors.Is(err, unix.ESRCH) && !errors.Is(err, errRemoved) {
		t.Fatalf("read after exit: %v, want ESRCH or removed", err)
	}
	if gone(err) != nil {
		t.Errorf("gone(%v) is not nil: an exited process would fail the list", err)
	}
	if files.Len() != 0 {
		t.Errorf("%d processes kept after the exit, want 0", files.Len())
	}
}

// A cache full keeps nothing more, yet reads.
func TestProcFilesBounded(t *testing.T) {
	files := NewProcFiles()
	defer files.Close()
	r := newReader()
	self := os.Getpid()
	files.swept = time.Now() // no sweep of the placeholders below
	for pid := range maxProcFiles {
		files.procs[-1-pid] = &procFile{status: -1, adj: -1} // placeholders: closing -1 is harmless
	}
	if _, _, err := files.read(r, "/proc", self); err != nil {
		t.Fatal(err)
	}
	if _, kept := files.procs[self]; kept || files.Len() != maxProcFiles {
		t.Errorf("a full cache took one more (%d kept)", files.Len())
	}
}
