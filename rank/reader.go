package rank

import (
	"errors"
	"os"
	"sync"

	"github.com/oomtrace/oomtrace/internal/kfile"
	"github.com/oomtrace/oomtrace/kernel/cgroupfs"
	"golang.org/x/sys/unix"
)

// errRemoved is the walk's: a cgroup (or process) gone while read.
var errRemoved = cgroupfs.ErrRemoved

// classify turns "the cgroup went away" (ENOENT, or ENODEV from a
// directory removed while open) into errRemoved.
func classify(path string, err error) error {
	if cgroupfs.Removed(err) {
		return errRemoved
	}
	return &os.PathError{Op: "read", Path: path, Err: err}
}

// reader reads kernel files into one reused buffer with bare open, read,
// close: os.ReadFile adds an fstat and a poller registration, more than
// doubling the system calls over thousands of files per tick.
type reader struct {
	buf []byte
	// noOOMScore skips /proc/PID/oom_score: the kernel computes it on each
	// read (oom_badness() under the task lock), and what Processes serves
	// does not show it.
	noOOMScore bool
	// files (nil: none) keeps processes' /proc files open between reads.
	files *ProcFiles
	// skip (nil: none) names processes readProcs leaves out unread.
	skip func(pid int) bool
}

func newReader() *reader { return &reader{buf: make([]byte, 8<<10)} }

// borrowReader is a reader whose buffer was used before: Processes runs
// on each kill, and 8 KiB fresh each time was garbage the collector paid
// for in OOM storms. Give it back with release once nothing it read is
// used any more.
func borrowReader() *reader {
	r := readerPool.Get().(*reader)
	r.noOOMScore, r.files, r.skip = false, nil, nil
	return r
}

func (r *reader) release() {
	r.files, r.skip = nil, nil
	readerPool.Put(r)
}

var readerPool = sync.Pool{New: func() any { return newReader() }}

// read returns the file's content, valid until the next call.
func (r *reader) read(file string) ([]byte, error) { return r.readAt(unix.AT_FDCWD, file) }

// readAt reads the file name under the directory descriptor dfd (or a
// path, with unix.AT_FDCWD).
func (r *reader) readAt(dfd int, name string) ([]byte, error) {
	fd, err := kfile.OpenAt(dfd, name, unix.O_RDONLY)
	if err != nil {
		return nil, classify(name, err)
	}
	defer kfile.Close(fd)
	for n := 0; ; {
		if n == len(r.buf) {
			r.buf = append(r.buf, make([]byte, len(r.buf))...)
		}
		m, err := kfile.Read(fd, r.buf[n:])
		if err != nil {
			return nil, classify(name, err)
		}
		if m == 0 {
			return r.buf[:n], nil
		}
		n += m
	}
}

// intAt reads a byte count from the file name under the directory
// descriptor at (see cgroupfs.ReadValueAt): -1 for "max", for v1's
// PAGE_COUNTER_MAX and for a missing file (the root has no limit files;
// memsw needs swap accounting).
func (r *reader) intAt(at int, name string) (int64, error) {
	v, err := cgroupfs.ReadValueAt(at, name)
	switch {
	case errors.Is(err, unix.ENOENT):
		return -1, nil
	case err != nil:
		return 0, classify(name, err)
	case v == nil:
		return -1, nil
	}
	return *v, nil
}

// keyed finds "key value" in a flat-keyed file such as memory.stat.
func keyed(data []byte, key string) (int64, bool) { return kfile.Keyed(data, key) }
