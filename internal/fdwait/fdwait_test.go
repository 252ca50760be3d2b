package fdwait

import (
	"encoding/binary"
	"errors"
	"os"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func eventfd(t *testing.T) int {
	t.Helper()
	fd, err := unix.Eventfd(0, unix.EFD_CLOEXEC)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	return fd
}

func signal(t *testing.T, fd int) {
	t.Helper()
	var one [8]byte
	binary.NativeEndian.PutUint64(one[:], 1)
	if _, err := unix.Write(fd, one[:]); err != nil {
		t.Fatal(err)
	}
}

// readable asks the eventfd itself, without blocking.
func readable(fd int) func() bool {
	return func() bool {
		fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
		n, err := unix.Poll(fds, 0)
		return err == nil && n > 0
	}
}

func newWaiter(t *testing.T, fd int) *Waiter {
	t.Helper()
	w, err := New(fd, "eventfd")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close() })
	return w
}

func TestWaitReturnsWhenReadable(t *testing.T) {
	fd := eventfd(t)
	w := newWaiter(t, fd)
	done := make(chan error, 1)
	go func() { done <- w.Wait(time.Time{}, readable(fd)) }()
	signal(t, fd)
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Wait: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Wait did not return after the descriptor became readable")
	}
}

// Readiness that comes while nobody waits is not lost: the next Wait
// returns at once.
func TestReadinessBetweenWaitsIsKept(t *testing.T) {
	fd := eventfd(t)
	w := newWaiter(t, fd)
	signal(t, fd)
	if err := w.Wait(time.Now().Add(10*time.Second), readable(fd)); err != nil {
		t.Fatalf("Wait after a signal: %v", err)
	}
}

func TestWaitDeadline(t *testing.T) {
	fd := eventfd(t)
	w := newWaiter(t, fd)
	if err := w.Wait(time.Now().Add(20*time.Millisecond), readable(fd)); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("Wait on a quiet descriptor: %v, want the deadline", err)
	}
}

func TestStopEndsWaits(t *testing.T) {
	fd := eventfd(t)
	w := newWaiter(t, fd)
	done := make(chan error, 1)
	go func() { done <- w.Wait(time.Time{}, readable(fd)) }()
	w.Stop()
	select {
	case err := <-done:
		if !errors.Is(err, ErrStopped) {
			t.Fatalf("Wait in progress at Stop: %v, want ErrStopped", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Stop did not end the Wait in progress")
	}
	if err := w.Wait(time.Time{}, readable(fd)); !errors.Is(err, ErrStopped) {
		t.Fatalf("Wait after Stop: %v, want ErrStopped", err)
	}
}

func TestCloseLeavesTheOriginalOpen(t *testing.T) {
	fd := eventfd(t)
	w, err := New(fd, "eventfd")
	if err != nil {
		t.Fatal(err)
	}
	w.Close()
	signal(t, fd) // fails if fd was closed
}

func TestNotPollable(t *testing.T) {
	f, err := os.CreateTemp(t.TempDir(), "regular")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if w, err := New(int(f.Fd()), "regular file"); err == nil {
		w.Close()
		t.Fatal("a regular file, which epoll refuses, was accepted")
	}
}
