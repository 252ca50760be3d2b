package rank

import (
	"bytes"
	"errors"
	"os"
	"runtime"
	"strconv"

	"github.com/oomtrace/oomtrace/kernel/mm"
	"github.com/oomtrace/oomtrace/kernel/procfs"
	"golang.org/x/sys/unix"
)

// Pages are a process's memory as oom_badness() counts it, in pages (the
// same names as victim.pages in oom_kill events).
type Pages = mm.Pages

// proc is one process as read from /proc.
type proc struct {
	pid      int
	comm     string
	node     int // its cgroup's index in the walk
	adj      int
	pages    Pages
	oomScore int64 // /proc/PID/oom_score, -1 when unreadable
}

var pageSize = uint64(os.Getpagesize())

// readProcs reads the processes of the cgroup at dir (cgroup.procs), in
// the file's order. Processes that exit meanwhile, kernel threads and
// zombies (no mm: the OOM killer skips them) and global init (never
// chosen) are left out.
func (r *reader) readProcs(procRoot, dir string, node int, out []proc) ([]proc, error) {
	data, err := r.read(dir + "/cgroup.procs")
	if errors.Is(err, unix.EOPNOTSUPP) {
		return out, nil // a v2 threaded cgroup: its processes are listed in its domain
	}
	if err != nil {
		return out, err
	}
	var pids []int
	for _, f := range bytes.Fields(data) {
		if pid, err := strconv.Atoi(string(f)); err == nil && pid != 1 {
			pids = append(pids, pid)
		}
	}
	for _, pid := range pids {
		if r.skip != nil && r.skip(pid) {
			continue
		}
		runtime.Gosched() // as the walk does: a kill's record waits one process, not the cgroup
		p, ok, err := r.readProc(procRoot, pid, !r.noOOMScore)
		if err != nil {
			return out, err
		}
		if ok {
			p.node = node
			out = append(out, p)
		}
	}
	return out, nil
}

// readProc reads status (comm and the mm counters, the same ones
// oom_badness() reads), oom_score_adj and oom_score. ok is false when the
// process is gone or has no mm.
func (r *reader) readProc(procRoot string, pid int, oomScore bool) (p proc, ok bool, err error) {
	var status, adjData []byte
	if r.files != nil {
		status, adjData, err = r.files.read(r, procRoot, pid)
	} else {
		status, adjData, err = r.readProcOnce(procRoot, pid)
	}
	if err != nil {
		return p, false, gone(err)
	}
	p.pid = pid
	st := procfs.ParseStatus(status)
	p.comm, p.pages = st.Name, st.Pages
	if !st.HasMM {
		return p, false, nil
	}
	adj, err := procfs.ParseNumber(adjData)
	if err != nil {
		return p, false, err
	}
	p.adj, p.oomScore = int(adj), -1
	if !oomScore {
		return p, true, nil
	}
	if p.oomScore, err = r.number(procRoot + "/" + strconv.Itoa(pid) + "/oom_score"); err != nil {
		p.oomScore = -1
	}
	return p, true, nil
}

// readProcOnce reads status and oom_score_adj as ProcFiles does, closing
// them after.
func (r *reader) readProcOnce(procRoot string, pid int) (status, adj []byte, err error) {
	f, err := openProcFile(procRoot, pid)
	if err != nil {
		return nil, nil, err
	}
	defer f.close()
	return r.preadPair(f.status, f.adj)
}

func (r *reader) number(file string) (int64, error) {
	data, err := r.read(file)
	if err != nil {
		return 0, err
	}
	return procfs.ParseNumber(data)
}

// gone turns "the process exited" (ENOENT, ESRCH) into no error.
func gone(err error) error {
	if errors.Is(err, errRemoved) || errors.Is(err, unix.ESRCH) {
		return nil
	}
	return err
}
