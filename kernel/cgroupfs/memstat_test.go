package cgroupfs

import (
	"os"
	"path/filepath"
	"testing"
)

func writeFiles(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func val(p *int64) any {
	if p == nil {
		return nil
	}
	return *p
}

// v2's names are read as they are; a key this kernel lacks (kernel, before
// 5.18) is nil, not 0.
func TestReadMemStatV2(t *testing.T) {
	dir := writeFiles(t, map[string]string{
		"memory.stat":   "anon 1000\nfile 2000\nkernel_stack 16384\nslab 300\nsock 0\nshmem 40\nfile_dirty 5\nfile_writeback 6\ninactive_file 7\n",
		"memory.events": "low 0\nhigh 3\nmax 9\noom 2\noom_kill 2\n",
	})
	h := Hierarchy{Root: "/", V2: true}
	s, err := h.ReadMemStat(nil, dir, make([]byte, 8192))
	if err != nil {
		t.Fatal(err)
	}
	for name, c := range map[string]struct{ got, want any }{
		"anon": {val(s.Anon), int64(1000)}, "file": {val(s.File), int64(2000)}, "kernel": {val(s.Kernel), nil},
		"slab": {val(s.Slab), int64(300)}, "shmem": {val(s.Shmem), int64(40)}, "sock": {val(s.Sock), int64(0)},
		"file_dirty": {val(s.FileDirty), int64(5)}, "file_writeback": {val(s.FileWriteback), int64(6)},
	} {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", name, c.got, c.want)
		}
	}
	e, err := h.ReadMemEvents(nil, dir, make([]byte, 8192))
	if err != nil {
		t.Fatal(err)
	}
	if val(e.High) != int64(3) || val(e.Max) != int64(9) || val(e.OOMKill) != int64(2) || e.OOMGroupKill != nil || e.Failcnt != nil {
		t.Errorf("events %v %v %v %v %v", val(e.High), val(e.Max), val(e.OOMKill), val(e.OOMGroupKill), val(e.Failcnt))
	}
}

// v1's hierarchical totals stand for v2's names (its own rss and cache
// would leave out the descendants the limit covers), its kernel and
// socket charges come from the kmem files, and its events are failcnt and
// oom_control's oom_kill.
func TestReadMemStatV1(t *testing.T) {
	dir := writeFiles(t, map[string]string{
		"memory.stat": "cache 1\nrss 2\nshmem 3\ndirty 4\nwriteback 5\ntotal_cache 100\ntotal_rss 200\ntotal_shmem 30\n" +
			"total_dirty 40\ntotal_writeback 50\n",
		"memory.kmem.usage_in_bytes": "8192\n",
		"memory.failcnt":             "17\n",
		"memory.memsw.failcnt":       "3\n",
		"memory.oom_control":         "oom_kill_disable 0\nunder_oom 0\noom_kill 4\n",
	})
	h := Hierarchy{Root: "/"}
	s, err := h.ReadMemStat(nil, dir, make([]byte, 8192))
	if err != nil {
		t.Fatal(err)
	}
	if val(s.Anon) != int64(200) || val(s.File) != int64(100) || val(s.Shmem) != int64(30) || val(s.FileDirty) != int64(40) ||
		val(s.FileWriteback) != int64(50) || val(s.Kernel) != int64(8192) || s.Slab != nil || s.Sock != nil {
		t.Errorf("v1 stat anon %v file %v shmem %v dirty %v wb %v kernel %v slab %v sock %v", val(s.Anon), val(s.File),
			val(s.Shmem), val(s.FileDirty), val(s.FileWriteback), val(s.Kernel), val(s.Slab), val(s.Sock))
	}
	e, err := h.ReadMemEvents(nil, dir, make([]byte, 8192))
	if err != nil {
		t.Fatal(err)
	}
	if val(e.Failcnt) != int64(17) || val(e.MemswFailcnt) != int64(3) || val(e.OOMKill) != int64(4) || e.Max != nil {
		t.Errorf("v1 events failcnt %v oom_kill %v max %v", val(e.Failcnt), val(e.OOMKill), val(e.Max))
	}
	if _, err := h.ReadMemStat(nil, filepath.Join(dir, "gone"), make([]byte, 8192)); err == nil {
		t.Error("a removed cgroup read without error")
	}
}
