package rank

import (
	"slices"
	"testing"
)

// Processes reads the cgroup's subtree, parent before children, and none
// outside it; kernel threads and init are left out, as the kernel does.
func TestProcessesOfASubtree(t *testing.T) {
	f := newFixture(t, true, 1024, 0)
	f.cgroup("/a", 64*mib, 0, 0, 10, 1)
	f.cgroup("/a/b", -1, 0, 0, 11, 12)
	f.cgroup("/other", -1, 0, 0, 13)
	f.proc(fakeProc{pid: 1, comm: "init", anon: 5})
	f.proc(fakeProc{pid: 10, comm: "a", anon: 100, adj: 300})
	f.proc(fakeProc{pid: 11, comm: "kworker", kthread: true})
	f.proc(fakeProc{pid: 12, comm: "b", anon: 50, swap: 7})
	f.proc(fakeProc{pid: 13, comm: "out", anon: 9})
	procs, err := f.src.Processes("/a")
	if err != nil {
		t.Fatal(err)
	}
	var pids []int
	for _, p := range procs {
		pids = append(pids, p.Pid)
	}
	if !slices.Equal(pids, []int{10, 12}) {
		t.Fatalf("pids %v, want [10 12]", pids)
	}
	if p := procs[0]; p.Comm != "a" || p.OOMScoreAdj != 300 || p.Pages.Anon != 100 {
		t.Errorf("%+v", p)
	}
	if p := procs[1]; p.Pages.Swap != 7 {
		t.Errorf("%+v", p)
	}
	all, err := f.src.Processes("/")
	if err != nil || len(all) != 3 {
		t.Errorf("the whole machine: %+v %v, want 3 processes", all, err)
	}
	if _, err := f.src.Processes("/gone"); err == nil {
		t.Error("a cgroup that does not exist read without error")
	}
}
