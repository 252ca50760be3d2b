package history

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/oomtrace/oomtrace/kernel/cgroupfs"
)

// fakeTree is a cgroup v2 tree of plain files: each cgroup a directory
// with its memory.current.
func fakeTree(t *testing.T, usage map[string]int64) cgroupfs.Hierarchy {
	t.Helper()
	root := t.TempDir()
	for p, u := range usage {
		dir := filepath.Join(root, p)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		setUsage(t, dir, u)
	}
	return cgroupfs.Hierarchy{Root: root, V2: true}
}

func setUsage(t *testing.T, dir string, u int64) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, "memory.current"), []byte(strconv.FormatInt(u, 10)+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
}

// A clock the test moves.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// Only hot cgroups are read; a cgroup that cools keeps its samples for a
// window, then is forgotten; one removed stops being sampled.
func TestRecorderSamplesHotCgroupsOnly(t *testing.T) {
	h := fakeTree(t, map[string]int64{"/hot": 100, "/idle": 5, "/gone": 7})
	c := &clock{t: time.Unix(1700000000, 0)}
	r := &Recorder{Hierarchy: h, Window: 10 * time.Second}
	r.now = c.now
	if r.sample() {
		t.Fatal("hot with nothing set hot")
	}
	r.SetHot([]string{"/hot", "/gone"})
	for i := range 3 {
		setUsage(t, filepath.Join(h.Root, "hot"), int64(100+i))
		if !r.sample() {
			t.Fatal("nothing hot after SetHot")
		}
		c.add(time.Second)
	}
	got := r.Samples("/hot", c.now())
	if len(got) != 3 || got[0].UsageBytes != 100 || got[2].UsageBytes != 102 || !got[1].At.After(got[0].At) {
		t.Errorf("hot samples %+v: want 100, 101, 102 a second apart", got)
	}
	// A kill's line holds the samples up to the kill, not those the
	// sampler took while the line waited to be written.
	if upTo := r.Samples("/hot", got[1].At); len(upTo) != 2 || upTo[1] != got[1] {
		t.Errorf("samples up to the second: %+v", upTo)
	}
	if s := r.Samples("/idle", c.now()); s != nil {
		t.Errorf("an idle cgroup was sampled: %+v", s)
	}

	// Cooled: no more samples, the old ones kept for the window.
	r.SetHot([]string{"/gone"})
	if err := os.RemoveAll(filepath.Join(h.Root, "gone")); err != nil {
		t.Fatal(err)
	}
	if r.sample() {
		t.Error("a removed cgroup is still sampled")
	}
	c.add(5 * time.Second)
	r.sample()
	if n := len(r.Samples("/hot", c.now())); n != 3 {
		t.Errorf("%d samples 8 s after the first, with a 10 s window: want 3", n)
	}
	c.add(3500 * time.Millisecond)
	if n := len(r.Samples("/hot", c.now())); n != 1 {
		t.Errorf("%d samples 11.5 s after the first: want the last one", n)
	}
	c.add(5 * time.Second)
	r.sample()
	if _, ok := r.series["/hot"]; ok {
		t.Error("a cold cgroup whose samples all aged out is still kept")
	}
}

// Run samples at once when a cgroup turns hot, then every Every.
func TestRecorderRun(t *testing.T) {
	h := fakeTree(t, map[string]int64{"/a": 1})
	r := &Recorder{Hierarchy: h, Every: 10 * time.Millisecond}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); r.Run(ctx) }()
	defer func() { cancel(); <-done }()
	r.SetHot([]string{"/a"})
	deadline := time.Now().Add(10 * time.Second)
	for len(r.Samples("/a", time.Now())) < 3 {
		if time.Now().After(deadline) {
			t.Fatalf("samples %+v after 10 s at 10 ms", r.Samples("/a", time.Now()))
		}
		time.Sleep(time.Millisecond)
	}
}

// Past MaxHot hot cgroups, the fullest (first given) are sampled.
func TestRecorderBoundsHot(t *testing.T) {
	usage := map[string]int64{}
	var paths []string
	for i := range MaxHot + 6 {
		p := "/c" + strconv.Itoa(i)
		usage[p], paths = int64(i), append(paths, p)
	}
	r := &Recorder{Hierarchy: fakeTree(t, usage)}
	r.SetHot(paths)
	r.sample()
	for i, p := range paths {
		if got := r.Samples(p, time.Now()); (len(got) == 1) != (i < MaxHot) {
			t.Errorf("%s (%d of %d given): %d samples", p, i+1, len(paths), len(got))
		}
	}
}
