package rank

import (
	"strconv"
	"sync"
	"time"

	"github.com/oomtrace/oomtrace/internal/kfile"
	"golang.org/x/sys/unix"
)

// ProcFiles keeps the /proc files of processes read once open, to be read
// again from offset 0: status and oom_score_adj.
//
// Why: every path walk through /proc/PID (opening the directory, and each
// file below it) revalidates the pid's inodes under the task's lock, which
// the OOM killer takes for every task it scans. Read in a storm, right
// after each kill, those opens spun on the lock: perf put a third of the
// daemon's CPU per kill in the candidate list's /proc reads, most of it in
// task_dump_owner's spin lock. A file kept open is read with one pread;
// its task is the one it was opened for (a pid reused by a new process is
// a new entry), and once that task has exited the read fails with ESRCH.
//
// At most maxProcFiles processes are kept (two descriptors each); beyond
// that a process's files are opened and closed for each read, as without
// ProcFiles. At each read, at most once a second, entries of processes
// gone or not read for procFilesIdle are closed; after a storm, what is
// left stays open until the next read.
type ProcFiles struct {
	mu    sync.Mutex
	procs map[int]*procFile
	swept time.Time
}

type procFile struct {
	status, adj int
	used        time.Time
}

const (
	maxProcFiles  = 128
	procFilesIdle = 10 * time.Second
)

// NewProcFiles returns an empty cache; Close closes what it holds.
func NewProcFiles() *ProcFiles { return &ProcFiles{procs: map[int]*procFile{}} }

// Close closes every file held.
func (f *ProcFiles) Close() {
	f.mu.Lock()
	defer f.mu.Unlock()
	for pid, p := range f.procs {
		p.close()
		delete(f.procs, pid)
	}
}

// Len is how many processes' files are open.
func (f *ProcFiles) Len() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.procs)
}

func (p *procFile) close() {
	kfile.Close(p.status)
	kfile.Close(p.adj)
}

// read reads pid's status and oom_score_adj into r's buffer: status is
// r.buf[:ns], adj the bytes after it. Errors are classify's.
func (f *ProcFiles) read(r *reader, procRoot string, pid int) (status, adj []byte, err error) {
	now := time.Now()
	f.mu.Lock()
	defer f.mu.Unlock()
	f.sweep(now)
	p := f.procs[pid]
	if p == nil {
		if p, err = openProcFile(procRoot, pid); err != nil {
			return nil, nil, err
		}
		if len(f.procs) < maxProcFiles {
			f.procs[pid] = p
		} else {
			defer p.close()
		}
	}
	p.used = now
	status, adj, err = r.preadPair(p.status, p.adj)
	if err != nil {
		// Exited (ESRCH), or the file failed: never read it again.
		if f.procs[pid] == p {
			delete(f.procs, pid)
			p.close()
		}
		return nil, nil, err
	}
	return status, adj, nil
}

// sweep closes the entries of processes gone or idle for procFilesIdle, at
// most once a second. kill(pid, 0) asks without /proc; a pid already reused
// keeps its entry until idle (its reads fail, and close it, before).
func (f *ProcFiles) sweep(now time.Time) {
	if now.Sub(f.swept) < time.Second {
		return
	}
	f.swept = now
	for pid, p := range f.procs {
		if now.Sub(p.used) > procFilesIdle || !kfile.Alive(pid) {
			p.close()
			delete(f.procs, pid)
		}
	}
}

func openProcFile(procRoot string, pid int) (*procFile, error) {
	dir := procRoot + "/" + strconv.Itoa(pid)
	dfd, err := kfile.Open(dir, unix.O_PATH|unix.O_DIRECTORY)
	if err != nil {
		return nil, classify(dir, err)
	}
	defer kfile.Close(dfd)
	status, err := kfile.OpenAt(dfd, "status", unix.O_RDONLY)
	if err != nil {
		return nil, classify(dir+"/status", err)
	}
	adj, err := kfile.OpenAt(dfd, "oom_score_adj", unix.O_RDONLY)
	if err != nil {
		kfile.Close(status)
		return nil, classify(dir+"/oom_score_adj", err)
	}
	return &procFile{status: status, adj: adj}, nil
}

// preadPair reads both files from offset 0 into r.buf, status first.
func (r *reader) preadPair(status, adj int) ([]byte, []byte, error) {
	n, err := r.preadAll(status, 0)
	if err != nil {
		return nil, nil, classify("status", err)
	}
	m, err := r.preadAll(adj, n)
	if err != nil {
		return nil, nil, classify("oom_score_adj", err)
	}
	return r.buf[:n], r.buf[n:m], nil
}

// preadAll reads fd from offset 0 into r.buf[from:], growing it; it
// returns the end of what was read.
func (r *reader) preadAll(fd, from int) (int, error) {
	n := from
	for {
		if n == len(r.buf) {
			r.buf = append(r.buf, make([]byte, len(r.buf))...)
		}
		m, err := kfile.Pread(fd, r.buf[n:], int64(n-from))
		if err != nil {
			return 0, err
		}
		if m == 0 {
			return n, nil
		}
		n += m
	}
}
