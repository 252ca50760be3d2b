package cgroupfs

import (
	"fmt"
	"sync"
	"time"

	"github.com/oomtrace/oomtrace/internal/kfile"
	"golang.org/x/sys/unix"
)

// OpenFiles keeps kernel files read once open (a cgroup's memory.stat and
// event counters, a pressure file), to be read again from offset 0 with
// one pread: the kernel makes their text anew for each read.
//
// Why: opening a cgroupfs file walks its path and runs the security
// hooks. Read just after each kill of a storm in one cgroup, the opens and
// closes of its memory.stat, its event files and the pressure file were
// half of what reading them cost (perf: a fifth of the daemon's samples in
// openat).
//
// At most maxOpenFiles are kept; beyond that a file is opened and closed
// for each read. At each read, at most once a second, files not read for
// openFilesIdle are closed; after a storm, what is left stays open until
// the next read (a removed cgroup's files then pin its directory's kernel
// objects until that read: at most maxOpenFiles of them). A nil OpenFiles
// keeps nothing open.
type OpenFiles struct {
	mu    sync.Mutex
	files map[string]*openFile
	swept time.Time
}

type openFile struct {
	fd   int
	used time.Time
}

const (
	maxOpenFiles  = 32
	openFilesIdle = 10 * time.Second
)

// Read reads the file at path into buf and returns the bytes read: its
// whole text, in one read (a text that fills buf is an error, as it may
// have been cut). Errors are the bare errno, as kfile's.
func (o *OpenFiles) Read(path string, buf []byte) ([]byte, error) {
	if o == nil {
		return readOnce(path, buf)
	}
	now := time.Now()
	o.mu.Lock()
	defer o.mu.Unlock()
	o.sweep(now)
	if f := o.files[path]; f != nil {
		f.used = now
		data, err := readFrom(f.fd, path, buf)
		if err == nil {
			return data, nil
		}
		// Its cgroup removed (ENODEV), maybe made again under the same
		// path: once more through a new open.
		kfile.Close(f.fd)
		delete(o.files, path)
	}
	if len(o.files) >= maxOpenFiles {
		return readOnce(path, buf)
	}
	fd, err := kfile.Open(path, unix.O_RDONLY)
	if err != nil {
		return nil, err
	}
	data, err := readFrom(fd, path, buf)
	if err != nil {
		kfile.Close(fd)
		return nil, err
	}
	if o.files == nil {
		o.files = map[string]*openFile{}
	}
	o.files[path] = &openFile{fd: fd, used: now}
	return data, nil
}

// Len is how many files are open.
func (o *OpenFiles) Len() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return len(o.files)
}

// Close closes every file held.
func (o *OpenFiles) Close() {
	o.mu.Lock()
	defer o.mu.Unlock()
	for p, f := range o.files {
		kfile.Close(f.fd)
		delete(o.files, p)
	}
}

func (o *OpenFiles) sweep(now time.Time) {
	if now.Sub(o.swept) < time.Second {
		return
	}
	o.swept = now
	for p, f := range o.files {
		if now.Sub(f.used) >= openFilesIdle {
			kfile.Close(f.fd)
			delete(o.files, p)
		}
	}
}

func readOnce(path string, buf []byte) ([]byte, error) {
	fd, err := kfile.Open(path, unix.O_RDONLY)
	if err != nil {
		return nil, err
	}
	defer kfile.Close(fd)
	return readFrom(fd, path, buf)
}

func readFrom(fd int, path string, buf []byte) ([]byte, error) {
	n, err := kfile.Pread(fd, buf, 0)
	switch {
	case err != nil:
		return nil, err
	case n == len(buf):
		return nil, fmt.Errorf("%s: longer than %d bytes", path, len(buf)-1)
	}
	return buf[:n], nil
}
