package daemon

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"sync/atomic"
	"testing"
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
	// 1 MiB of lines through a 64 KiB pipe, read only once all is sent:
	// the writes fill the pipe, get EAGAIN, and wait in the ordinary write.
	line := bytes.Repeat([]byte("x"), 1023)
	line = append(line, '\n')
	done := make(chan error, 1)
	var written atomic.Int32
	go func() {
		for range 1024 {
			if n, err := w.Write(line); err != nil || n != len(line) {
				done <- err
				return
			}
			written.Add(1)
		}
		done <- pw.Close()
	}()
	// The pipe nearly full before anything is read.
	for written.Load() < 60 {
		runtime.Gosched()
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
}
