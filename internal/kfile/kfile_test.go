package kfile

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

func TestReadAt(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "v"), []byte("12345\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	dfd, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(dfd)
	var buf [8]byte
	if got, err := ReadAt(dfd, "v", buf[:]); err != nil || string(got) != "12345\n" {
		t.Errorf("ReadAt: %q, %v", got, err)
	}
	if _, err := ReadAt(dfd, "v", buf[:6]); err == nil {
		t.Error("a value filling the buffer read without error: it may be cut")
	}
	if _, err := ReadAt(dfd, "missing", buf[:]); !errors.Is(err, unix.ENOENT) {
		t.Errorf("missing file: %v, want ENOENT", err)
	}
	// A real one-value kernel file.
	proc, err := unix.Open("/proc/sys/vm", unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Skipf("no /proc/sys/vm: %v", err)
	}
	defer unix.Close(proc)
	if got, err := ReadAt(proc, "overcommit_memory", buf[:]); err != nil || len(got) != 2 {
		t.Errorf("vm.overcommit_memory: %q, %v", got, err)
	}
}
