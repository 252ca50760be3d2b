// Package fdwait waits for a descriptor to become readable through the Go
// runtime's network poller, instead of in a blocking system call.
//
// Why: a goroutine blocked in a system call (epoll_wait on the ring buffer,
// on the cgroup notifications) keeps its P, so the runtime's sysmon thread,
// seeing a P busy, polls every 20 µs and backs off only slowly: each kill
// woke the daemon into dozens of sysmon wake-ups. Measured on a 2-vCPU VM,
// where each costs a context switch: over half of the daemon's CPU time per
// kill. Parked in the poller, the goroutine holds no P, and sysmon sleeps
// as soon as the work is done.
package fdwait

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Waiter waits on a duplicate of a descriptor that supports poll (a BPF ring
// buffer, an epoll set, an eventfd). Reading is the caller's business, with
// its own non-blocking calls.
type Waiter struct {
	f  *os.File
	rc syscall.RawConn

	mu      sync.Mutex // orders Stop against Wait setting its deadline
	stopped bool
}

// ErrStopped is what Wait returns once Stop was called.
var ErrStopped = errors.New("waiter stopped")

// Expired is a deadline long past: a read deadline that makes a wait, or a
// read through an API with deadlines, return at once.
var Expired = time.Unix(1, 0)

// New returns a Waiter on a duplicate of fd; name is for errors. fd is
// made non-blocking (the poller takes no other kind): the flag is shared
// with fd's open file, so fd's own reads must not rely on blocking.
func New(fd int, name string) (*Waiter, error) {
	dup, err := unix.FcntlInt(uintptr(fd), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("duplicating the %s descriptor: %w", name, err)
	}
	if err := unix.SetNonblock(dup, true); err != nil {
		unix.Close(dup)
		return nil, fmt.Errorf("%s descriptor: %w", name, err)
	}
	f := os.NewFile(uintptr(dup), name)
	// A descriptor the poller would not take has no deadlines.
	if err := f.SetReadDeadline(time.Time{}); err != nil {
		f.Close()
		return nil, fmt.Errorf("the %s cannot be polled: %w", name, err)
	}
	rc, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return nil, err
	}
	return &Waiter{f: f, rc: rc}, nil
}

// Wait returns nil once ready reports true, at the deadline (zero: none)
// with os.ErrDeadlineExceeded, or, once Stop was called, with ErrStopped.
// ready is asked first, then each time the poller sees the descriptor
// readable: it must look at the source itself (data in the ring, events in
// the set) without blocking. Asking first is what loses nothing: the poller
// forgets readiness from before a wait, so what came after the caller's
// last read and before this wait is seen only by that first ask.
func (w *Waiter) Wait(deadline time.Time, ready func() bool) error {
	w.mu.Lock()
	if w.stopped {
		w.mu.Unlock()
		return ErrStopped
	}
	err := w.f.SetReadDeadline(deadline)
	w.mu.Unlock()
	if err != nil {
		return err
	}
	err = w.rc.Read(func(uintptr) bool { return ready() })
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.stopped {
		return ErrStopped
	}
	return err
}

// Stop ends the current Wait and every later one. Safe from any goroutine.
func (w *Waiter) Stop() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.stopped = true
	_ = w.f.SetReadDeadline(Expired)
}

// Close closes the duplicate; the original descriptor stays open.
func (w *Waiter) Close() error { return w.f.Close() }
