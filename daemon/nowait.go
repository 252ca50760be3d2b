package daemon

import (
	"fmt"
	"os"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// noWaitFile writes event lines without waking the Go runtime's sysmon.
//
// An ordinary write(2) goes through the runtime's entersyscall, which wakes
// sysmon; sysmon then polls every 20 µs while the daemon works, on the other
// CPU. It was the largest single cost of a kill's line (see
// internal/kfile's raw.go). A raw system call skips the runtime, but must
// not block, since the goroutine keeps the daemon's only P while it runs.
// So a pipe's or socket's line is first written with pwritev2(RWF_NOWAIT):
// the kernel writes what it can at once and returns EAGAIN where it would
// wait for the reader. The rest goes through the file's ordinary, blocking
// Write. A file whose kernel does not offer RWF_NOWAIT (a tty, kernels
// before pipes had it) is written the ordinary way from then on.
//
// A regular file is written with a raw write(2): it never waits for a
// reader, only, at worst, for the page cache's writeback throttling, and
// ext4 refuses RWF_NOWAIT for buffered writes. Records arriving meanwhile
// wait in the ring buffer, which is sized for storms.
//
// A FIFO opened by its path refuses RWF_NOWAIT (only pipe(2)'s pipes offer
// it), and that is the stdout of a container: containerd and CRI-O hand a
// container named pipes. There the daemon opens the FIFO once more, through
// /proc/self/fd, as its own non-blocking open file (O_NONBLOCK on the
// inherited one would be seen by every other holder of it), writes with
// raw write(2), and waits for room in the runtime's poller.
type noWaitFile struct {
	f  *os.File
	fd int
	// blocking: RWF_NOWAIT was refused for this file, or its descriptor
	// could not be had; every write is ordinary.
	blocking bool
	regular  bool
	fifo     bool
	// polled is the FIFO's own non-blocking open file, once RWF_NOWAIT was
	// refused; nil otherwise.
	polled   *os.File
	polledRC syscall.RawConn
}

func newNoWaitFile(f *os.File) *noWaitFile {
	w := &noWaitFile{f: f, fd: -1, blocking: true}
	// Through SyscallConn: os.File.Fd would set the file blocking.
	if rc, err := f.SyscallConn(); err == nil {
		_ = rc.Control(func(fd uintptr) { w.fd, w.blocking = int(fd), false })
	}
	if st, err := f.Stat(); err == nil {
		w.regular = st.Mode().IsRegular()
		w.fifo = st.Mode()&os.ModeNamedPipe != 0
	}
	return w
}

func (w *noWaitFile) Write(p []byte) (int, error) {
	done := 0
	if w.polled != nil && len(p) > 0 {
		var errno unix.Errno
		done, errno = w.writePolled(p)
		if errno == 0 {
			return done, nil
		}
		// EPIPE and the like: the ordinary write below reports it.
	} else if !w.blocking && len(p) > 0 {
		write := pwritev2NoWait
		if w.regular {
			write = rawWrite
		}
		n, errno := write(w.fd, p)
		switch errno {
		case 0:
			done = n
			if done == len(p) {
				return done, nil
			}
		case unix.EAGAIN:
			// Would wait: the ordinary write below waits.
		case unix.EOPNOTSUPP, unix.EINVAL, unix.ENOSYS:
			w.blocking = true
			if w.fifo && w.openPolled() == nil {
				return w.Write(p)
			}
		default:
			// EPIPE, ENOSPC, EBADF...: the ordinary write reports it
			// the way os.File does (and dies of SIGPIPE on stdout
			// like any program).
		}
	}
	n, err := w.f.Write(p[done:])
	return done + n, err
}

// openPolled opens the FIFO anew as the daemon's own non-blocking open
// file, registered with the runtime's poller.
func (w *noWaitFile) openPolled() error {
	fd, err := unix.Open(fmt.Sprintf("/proc/self/fd/%d", w.fd), unix.O_WRONLY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	f := os.NewFile(uintptr(fd), w.f.Name())
	// The poller takes a FIFO; a file it would not take has no deadlines.
	if err := f.SetWriteDeadline(time.Time{}); err != nil {
		f.Close()
		return err
	}
	rc, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return err
	}
	w.polled, w.polledRC = f, rc
	return nil
}

// writePolled writes p whole through the FIFO's non-blocking file: raw
// writes, and while the FIFO is full, a wait in the runtime's poller. On an
// error it returns what was written and the error.
func (w *noWaitFile) writePolled(p []byte) (int, unix.Errno) {
	done := 0
	var failed unix.Errno
	err := w.polledRC.Write(func(fd uintptr) bool {
		for done < len(p) {
			n, errno := rawWrite(int(fd), p[done:])
			switch errno {
			case 0:
				done += n
			case unix.EAGAIN:
				return false // wait in the poller for room
			default:
				failed = errno
				return true
			}
		}
		return true
	})
	if failed == 0 && err != nil {
		failed = unix.EIO // the poller failed: the ordinary write takes over
	}
	return done, failed
}

// Close closes what the writer opened itself; the file it was given stays
// its owner's.
func (w *noWaitFile) Close() error {
	if w.polled == nil {
		return nil
	}
	err := w.polled.Close()
	w.polled, w.polledRC = nil, nil
	return err
}

// pwritev2NoWait is pwritev2(fd, {p}, 1, -1, RWF_NOWAIT): offset -1 writes
// at the file's position, as write(2) does (appending under O_APPEND).
func pwritev2NoWait(fd int, p []byte) (int, unix.Errno) {
	iov := unix.Iovec{Base: &p[0]}
	iov.SetLen(len(p))
	for {
		off := int64(-1)
		n, _, errno := unix.RawSyscall6(unix.SYS_PWRITEV2, uintptr(fd), uintptr(unsafe.Pointer(&iov)), 1,
			uintptr(off), 0, unix.RWF_NOWAIT)
		if errno == unix.EINTR {
			continue
		}
		return int(n), errno
	}
}

func rawWrite(fd int, p []byte) (int, unix.Errno) {
	for {
		n, _, errno := unix.RawSyscall(unix.SYS_WRITE, uintptr(fd), uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)))
		if errno == unix.EINTR {
			continue
		}
		return int(n), errno
	}
}
