package kfile

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// The system calls of a kill's path, made without telling the Go scheduler.
//
// Every ordinary system call (syscall.Syscall) enters the runtime's
// entersyscall, which wakes sysmon if it sleeps. sysmon then polls every
// 20 µs for as long as the daemon is busy, each poll a sleep and a
// wake-up on another CPU: in a storm it cost more CPU than the daemon's
// own work for the kill (perf: 22% of the daemon's samples in sysmon,
// a fifth more in the futex wake-ups of entersyscall). A raw system call
// (syscall.RawSyscall) skips that.
//
// The price: while a raw call runs, the goroutine keeps its P, so on the
// daemon's one P nothing else runs. These calls are therefore used only
// where the kernel answers from memory: cgroupfs, procfs and sysfs
// files, which may spin or wait on a kernel lock for a moment but never
// on I/O, and kill(pid, 0). Writes to outputs that may block go through
// WriteNoWait.

// OpenAt opens name relative to the directory dfd (unix.AT_FDCWD: the
// working directory, or an absolute name).
func OpenAt(dfd int, name string, flags int) (int, error) {
	p, err := unix.BytePtrFromString(name)
	if err != nil {
		return -1, err
	}
	for {
		fd, _, errno := unix.RawSyscall6(unix.SYS_OPENAT, uintptr(dfd), uintptr(unsafe.Pointer(p)), uintptr(flags|unix.O_CLOEXEC), 0, 0, 0)
		if errno == unix.EINTR {
			continue
		}
		if errno != 0 {
			return -1, errno
		}
		return int(fd), nil
	}
}

// Open opens an absolute path.
func Open(path string, flags int) (int, error) { return OpenAt(unix.AT_FDCWD, path, flags) }

// Read reads once from fd into p.
func Read(fd int, p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	return intoBuf(unix.SYS_READ, fd, p)
}

// Close closes fd; the error is of no use for a file only read.
func Close(fd int) {
	unix.RawSyscall(unix.SYS_CLOSE, uintptr(fd), 0, 0)
}

// Getdents reads directory entries of fd into buf (getdents64).
func Getdents(fd int, buf []byte) (int, error) {
	if len(buf) == 0 {
		return 0, unix.EINVAL
	}
	return intoBuf(unix.SYS_GETDENTS64, fd, buf)
}

// intoBuf is the system call trap(fd, p, len(p)), retried on EINTR.
func intoBuf(trap uintptr, fd int, p []byte) (int, error) {
	for {
		n, _, errno := unix.RawSyscall(trap, uintptr(fd), uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)))
		if errno == unix.EINTR {
			continue
		}
		if errno != 0 {
			return 0, errno
		}
		return int(n), nil
	}
}

// Fstat stats fd.
func Fstat(fd int, st *unix.Stat_t) error {
	if _, _, errno := unix.RawSyscall(unix.SYS_FSTAT, uintptr(fd), uintptr(unsafe.Pointer(st)), 0); errno != 0 {
		return errno
	}
	return nil
}

// Alive reports whether pid still exists (kill(pid, 0) is not ESRCH).
func Alive(pid int) bool {
	_, _, errno := unix.RawSyscall(unix.SYS_KILL, uintptr(pid), 0, 0)
	return errno != unix.ESRCH
}

// Sysinfo is sysinfo(2).
func Sysinfo(si *unix.Sysinfo_t) error {
	if _, _, errno := unix.RawSyscall(unix.SYS_SYSINFO, uintptr(unsafe.Pointer(si)), 0, 0); errno != 0 {
		return errno
	}
	return nil
}

// ReadFile reads the whole file at path into buf, grown as needed, and
// returns the content (which aliases the returned buffer's memory).
func ReadFile(path string, buf []byte) ([]byte, error) {
	fd, err := Open(path, unix.O_RDONLY)
	if err != nil {
		return nil, err
	}
	defer Close(fd)
	if cap(buf) < 512 {
		buf = make([]byte, 4096)
	}
	buf = buf[:cap(buf)]
	for n := 0; ; {
		if n == len(buf) {
			buf = append(buf, make([]byte, len(buf))...)
			buf = buf[:cap(buf)]
		}
		m, err := Read(fd, buf[n:])
		if err != nil {
			return nil, err
		}
		if m == 0 {
			return buf[:n], nil
		}
		n += m
	}
}

// Pread reads from fd at offset off.
func Pread(fd int, p []byte, off int64) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	for {
		n, _, errno := unix.RawSyscall6(unix.SYS_PREAD64, uintptr(fd), uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)), uintptr(off), 0, 0)
		if errno == unix.EINTR {
			continue
		}
		if errno != 0 {
			return 0, errno
		}
		return int(n), nil
	}
}

// PollEpoll is epoll_wait(epfd, events, 0): the events ready now, without
// waiting. (epoll_pwait with no signal mask: arm64 has no epoll_wait.)
func PollEpoll(epfd int, events []unix.EpollEvent) (int, error) {
	if len(events) == 0 {
		return 0, unix.EINVAL
	}
	for {
		n, _, errno := unix.RawSyscall6(unix.SYS_EPOLL_PWAIT, uintptr(epfd), uintptr(unsafe.Pointer(&events[0])),
			uintptr(len(events)), 0, 0, 0)
		if errno == unix.EINTR {
			continue
		}
		if errno != 0 {
			return 0, errno
		}
		return int(n), nil
	}
}
