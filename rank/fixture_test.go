package rank

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/oomtrace/oomtrace/enrich/cgroups"
)

const mib = 1 << 20

// fixture is a fake memory hierarchy and /proc in a temporary directory.
type fixture struct {
	t   *testing.T
	src Source
}

// newFixture makes an empty hierarchy (just its root) and a /proc with
// the given RAM and swap.
func newFixture(t *testing.T, v2 bool, ramMiB, swapMiB int) *fixture {
	t.Helper()
	dir := t.TempDir()
	f := &fixture{t: t, src: Source{Hierarchy: cgroups.Hierarchy{Root: filepath.Join(dir, "memory"), V2: v2}, ProcRoot: filepath.Join(dir, "proc")}}
	f.write(filepath.Join(f.src.ProcRoot, "meminfo"), fmt.Sprintf("MemTotal: %d kB\nMemFree: 1 kB\nSwapTotal: %d kB\n", ramMiB*1024, swapMiB*1024))
	f.write(filepath.Join(f.src.ProcRoot, "sys/vm/swappiness"), "60\n")
	if v2 {
		f.write(filepath.Join(f.src.Hierarchy.Root, "cgroup.procs"), "")
		f.write(filepath.Join(f.src.Hierarchy.Root, "memory.stat"), "anon 0\n")
	} else {
		f.cgroup("/", -1, 0, 0)
	}
	return f
}

func (f *fixture) write(path, data string) {
	f.t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		f.t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		f.t.Fatal(err)
	}
}

// cgroup creates or rewrites a cgroup: limit -1 is unlimited; its usage and
// inactive file pages in bytes; the pids in cgroup.procs.
func (f *fixture) cgroup(path string, limit, usage, inactiveFile int64, pids ...int) {
	f.t.Helper()
	dir := f.src.dir(path)
	lim := strconv.FormatInt(limit, 10)
	var procs []string
	for _, p := range pids {
		procs = append(procs, strconv.Itoa(p))
	}
	f.write(filepath.Join(dir, "cgroup.procs"), strings.Join(procs, "\n")+"\n")
	if f.src.Hierarchy.V2 {
		if limit < 0 {
			lim = "max"
		}
		f.write(filepath.Join(dir, "memory.max"), lim+"\n")
		f.write(filepath.Join(dir, "memory.current"), fmt.Sprintln(usage))
		f.write(filepath.Join(dir, "memory.stat"), fmt.Sprintf("anon %d\ninactive_file %d\nactive_file 0\n", usage-inactiveFile, inactiveFile))
		return
	}
	if limit < 0 {
		lim = "9223372036854771712"
	}
	f.write(filepath.Join(dir, "memory.limit_in_bytes"), lim+"\n")
	f.write(filepath.Join(dir, "memory.swappiness"), "60\n")
	f.write(filepath.Join(dir, "memory.usage_in_bytes"), fmt.Sprintln(usage))
	f.write(filepath.Join(dir, "memory.stat"), fmt.Sprintf("cache 0\ninactive_file 0\ntotal_inactive_file %d\n", inactiveFile))
}

// file writes one more file into a cgroup.
func (f *fixture) file(path, name, data string) { f.write(filepath.Join(f.src.dir(path), name), data) }

// fakeProc is a process: pages as the kernel counts them, shown in kB by status.
type fakeProc struct {
	pid                          int
	comm                         string
	anon, file, shmem, swap, pte uint64 // pages
	adj, oomScore                int
	kthread                      bool // no mm: status has no Rss lines
}

func (f *fixture) proc(p fakeProc) {
	f.t.Helper()
	dir := filepath.Join(f.src.ProcRoot, strconv.Itoa(p.pid))
	kb := func(pages uint64) uint64 { return pages * pageSize / 1024 }
	status := fmt.Sprintf("Name:\t%s\nUmask:\t0022\nState:\tS (sleeping)\nTgid:\t%d\nPid:\t%d\n", p.comm, p.pid, p.pid)
	if !p.kthread {
		status += fmt.Sprintf("VmRSS:\t%8d kB\nRssAnon:\t%8d kB\nRssFile:\t%8d kB\nRssShmem:\t%8d kB\nVmPTE:\t%8d kB\nVmSwap:\t%8d kB\n",
			kb(p.anon+p.file+p.shmem), kb(p.anon), kb(p.file), kb(p.shmem), kb(p.pte), kb(p.swap))
	}
	status += "Threads:\t1\n"
	f.write(filepath.Join(dir, "status"), status)
	f.write(filepath.Join(dir, "oom_score_adj"), fmt.Sprintln(p.adj))
	f.write(filepath.Join(dir, "oom_score"), fmt.Sprintln(p.oomScore))
}

func (f *fixture) snapshot(top int) *Snapshot {
	f.t.Helper()
	s, err := f.src.Snapshot(Options{Top: top, Threshold: 0.9})
	if err != nil {
		f.t.Fatal(err)
	}
	return s
}

// row finds a cgroup in a snapshot.
func row(t *testing.T, s *Snapshot, path string) Cgroup {
	t.Helper()
	for _, c := range s.Cgroups {
		if c.Path == path {
			return c
		}
	}
	t.Fatalf("no row for %s in %+v", path, s.Cgroups)
	return Cgroup{}
}

func pids(cs []Candidate) []int {
	var out []int
	for _, c := range cs {
		out = append(out, c.Pid)
	}
	return out
}
