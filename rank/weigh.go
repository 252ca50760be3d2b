package rank

import (
	"errors"
	"fmt"

	"github.com/oomtrace/oomtrace/kernel/cgroupfs"
)

// Process is one process an OOM in a cgroup would weigh, as /proc has it.
type Process struct {
	Pid         int
	Comm        string
	OOMScoreAdj int
	Pages       Pages
}

// Processes reads the processes of the cgroup at path (relative to the
// hierarchy's root, "/" for all) and of its descendants, in the walk's
// pre-order: the tasks mem_cgroup_scan_tasks() would hand the OOM killer.
// Kernel threads, zombies and init are left out, as the kernel leaves them;
// so are processes and cgroups gone while read.
func (s Source) Processes(path string) ([]Process, error) {
	r := borrowReader()
	defer r.release()
	r.noOOMScore, r.files, r.skip = true, s.Files, s.Skip
	var dirs []string
	enter := func(d cgroupfs.Dir, _ struct{}) (struct{}, error) {
		dirs = append(dirs, d.Path)
		return struct{}{}, nil
	}
	root := s.dir(path)
	if err := cgroupfs.Walk(root, struct{}{}, enter, nil); err != nil {
		return nil, fmt.Errorf("walking %s: %w", root, err)
	}
	var procs []proc
	for _, d := range dirs {
		var err error
		dir := root
		if d != "/" {
			dir = root + d
		}
		if procs, err = r.readProcs(s.ProcRoot, dir, 0, procs); err != nil && !errors.Is(err, errRemoved) {
			return nil, fmt.Errorf("reading processes of %s: %w", dir, err)
		}
	}
	out := make([]Process, len(procs))
	for i, p := range procs {
		out[i] = Process{Pid: p.pid, Comm: p.comm, OOMScoreAdj: p.adj, Pages: p.pages}
	}
	return out, nil
}
