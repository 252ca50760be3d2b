package daemon

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"sync/atomic"
	"testing"

	"golang.org/x/sys/unix"
)

// Lines reach a regular file and a pipe whole and in order, also when the
// pipe is full and the no-wait write must hand over to the blocking one.
func TestNoWaitFileWritesEverything(t *testing.T) {
	path := filepath.Join(t.TempDir(), "out")
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	w := newNoWaitFile(f)
	if !w.regular || w.blocking {
		t.Fatalf("regular file: regular %v blocking %v, want the raw write", w.regular, w.blocking)
	}
	for _, l := range []string{"one\n", "two\n"} {
		if n, err := w.Write([]byte(l)); err != nil || n != len(l) {
			t.Fatalf("write %q: %d, %v", l, n, err)
		}
	}
	f.Close()
	if got, _ := os.ReadFile(path); string(got) != "one\ntwo\n" {
		t.Errorf("file holds %q", got)
	}

	r, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	w = newNoWaitFile(pw)
	if w.regular {
		t.Fatal("a pipe taken for a regular file")
	}
	fillAndRead(t, w, pw, r)
}

// A FIFO opened by its path, as a container's stdout is: where the kernel
// refuses RWF_NOWAIT for it, the lines go through the daemon's own
// non-blocking open file of it, whole and in order, also when it is full.
func TestNoWaitFileWritesToANamedPipe(t *testing.T) {
	path := filepath.Join(t.TempDir(), "fifo")
	if err := unix.Mkfifo(path, 0o600); err != nil {
		t.Fatal(err)
	}
	r, err := os.OpenFile(path, os.O_RDONLY|unix.O_NONBLOCK, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	pw, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	w := newNoWaitFile(pw)
	if !w.fifo {
		t.Fatal("a FIFO not taken for one")
	}
	if fillAndRead(t, w, pw, r) {
		t.Log("RWF_NOWAIT refused: written through the daemon's own non-blocking open file")
	} else if w.blocking {
		t.Error("the FIFO was written with blocking writes: neither RWF_NOWAIT nor the non-blocking reopen worked")
	}
}

// fillAndRead writes 1 MiB of lines through w into pw, a pipe of 64 KiB,
// read from r only once nearly full: the writes fill it and must wait for
// room their own way. All must arrive whole and in order.
//
// It reports whether the lines went through the writer's own non-blocking
// file.
func fillAndRead(t *testing.T, w *noWaitFile, pw, r *os.File) (polled bool) {
	t.Helper()
	line := bytes.Repeat([]byte("x"), 1023)
	line = append(line, '\n')
	done := make(chan error, 1)
	wasPolled := make(chan bool, 1)
	var written atomic.Int32
	go func() {
		for range 1024 {
			if n, err := w.Write(line); err != nil || n != len(line) {
				done <- fmt.Errorf("write %d: %d bytes, %v", written.Load(), n, err)
				return
			}
			written.Add(1)
		}
		// The writer's own file of a FIFO is a writer too: the reader
		// sees the end once both are closed.
		polled := w.polled != nil
		if err := w.Close(); err != nil {
			done <- err
			return
		}
		wasPolled <- polled
		done <- pw.Close()
	}()
	// The pipe nearly full before anything is read.
	for written.Load() < 60 {
		runtime.Gosched()
	}
	if err := unix.SetNonblock(int(r.Fd()), false); err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if want := bytes.Repeat(line, 1024); !bytes.Equal(got, want) {
		t.Errorf("pipe carried %d bytes, want %d in order", len(got), len(want))
	}
	return <-wasPolled
}
