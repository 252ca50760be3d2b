package rank

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"
)

func crossedIDs(ls []Level) []uint64 {
	var out []uint64
	for _, l := range ls {
		out = append(out, l.ID)
	}
	return out
}

func TestRankDetectorCrossings(t *testing.T) {
	d := Detector{Threshold: 0.9}
	steps := []struct {
		levels []Level
		want   []uint64
		why    string
	}{
		{[]Level{{ID: 1, Ratio: 0.5}, {ID: 2, Ratio: 0.95}}, []uint64{2}, "already above when first seen"},
		{[]Level{{ID: 1, Ratio: 0.9}, {ID: 2, Ratio: 0.99}}, []uint64{1}, "1 reaches the threshold; 2 stays above: once per crossing"},
		{[]Level{{ID: 1, Ratio: 0.86}, {ID: 2, Ratio: 0.89}}, nil, "below the threshold but within the hysteresis: not re-armed"},
		{[]Level{{ID: 1, Ratio: 0.91}, {ID: 2, Ratio: 0.92}}, nil, "so back above is the same crossing"},
		{[]Level{{ID: 1, Ratio: 0.84}, {ID: 2, Ratio: 0.92}}, nil, "1 drops below 0.85: re-armed"},
		{[]Level{{ID: 1, Ratio: 0.93}, {ID: 2, Ratio: 0.92}}, []uint64{1}, "and crosses again"},
		{[]Level{{ID: 1, Ratio: 0.93}}, nil, "2 removed: forgotten"},
		{[]Level{{ID: 1, Ratio: 0.93}, {ID: 2, Ratio: 0.95}}, []uint64{2}, "a cgroup back with the same id is new"},
	}
	for i, s := range steps {
		if got := crossedIDs(d.Update(s.levels)); !slices.Equal(got, s.want) {
			t.Errorf("step %d (%s): crossed %v, want %v", i, s.why, got, s.want)
		}
	}
	if len(d.fired) != 2 {
		t.Errorf("remembers %d cgroups, want the 2 above the threshold", len(d.fired))
	}
	d.Update(nil)
	if len(d.fired) != 0 {
		t.Errorf("remembers %d cgroups after a scan without any, want 0", len(d.fired))
	}
}

func TestRankDetectorDisabled(t *testing.T) {
	var d Detector
	if got := d.Update([]Level{{ID: 1, Ratio: 2}}); got != nil || d.fired != nil {
		t.Errorf("threshold 0 reported %v", got)
	}
}

// The Watcher on a fixture: a crossing is reported with its victim once;
// the working set, not the raw usage, decides; a shadowed limit is left to
// its holder.
func TestRankWatcherCheck(t *testing.T) {
	f := newFixture(t, false, 16*1024, 0)
	f.cgroup("/app", limit64, 62*mib, 0, 10, 11)
	f.cgroup("/app/child", 128*mib, 40*mib, 0, 12) // shadowed: never reported itself
	f.cgroup("/cache", limit64, 63*mib, 40*mib, 13)
	f.proc(fakeProc{pid: 10, comm: "a", anon: 3000})
	f.proc(fakeProc{pid: 11, comm: "b", anon: 2000})
	f.proc(fakeProc{pid: 12, comm: "c", anon: 9000, oomScore: 670})
	f.proc(fakeProc{pid: 13, comm: "d", anon: 9000})
	w := Watcher{Source: f.src, Detector: Detector{Threshold: 0.9}}
	check := func() []Risk {
		t.Helper()
		r, err := w.Check()
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	r := check()
	if len(r) != 1 || r[0].CgroupPath != "/app" || r[0].Victim == nil || r[0].Victim.Pid != 12 || r[0].Victim.Cgroup != "/app/child" {
		t.Fatalf("risks %+v, want /app only (/cache is mostly inactive page cache) with victim 12 in /app/child", r)
	}
	if r[0].Limit != limit64 || r[0].LimitPath != "/app" || r[0].Ratio != 62.0/64 || r[0].Processes != 3 || r[0].TotalPages != limit64/pageSize {
		t.Errorf("risk %+v", r[0])
	}
	if r := check(); len(r) != 0 {
		t.Errorf("still above: reported again %+v", r)
	}
	f.cgroup("/app", limit64, 50*mib, 0, 10, 11)
	check()
	f.cgroup("/app", limit64, 60*mib, 0, 10, 11)
	if r := check(); len(r) != 1 {
		t.Errorf("dropped below the hysteresis and came back: %d risks, want 1", len(r))
	}
}

func TestRankWatcherRun(t *testing.T) {
	off := Watcher{Interval: time.Millisecond}
	done := make(chan error, 1)
	go func() { done <- off.Run(context.Background()) }()
	select {
	case <-done:
	case <-time.After(time.Second):
		t.Fatal("a disabled watcher did not return at once")
	}

	f := newFixture(t, true, 16*1024, 0)
	f.cgroup("/app", limit64, 63*mib, 0, 10)
	f.proc(fakeProc{pid: 10, comm: "a", anon: 3000})
	var mu sync.Mutex
	var got []Risk
	ctx, cancel := context.WithCancel(context.Background())
	w := Watcher{Source: f.src, Interval: time.Millisecond, Detector: Detector{Threshold: 0.9},
		OnRisk:  func(r Risk) { mu.Lock(); got = append(got, r); mu.Unlock() },
		OnError: func(err error) { t.Error(err) }}
	go func() { done <- w.Run(ctx) }()
	// Many scans of the same risky cgroup, counted, not timed.
	for deadline := time.Now().Add(10 * time.Second); w.Scans() < 20; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("only %d scans in 10s", w.Scans())
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(got) != 1 || got[0].Victim.Pid != 10 {
		t.Errorf("risks %+v over 20 scans or more, want exactly one, naming pid 10", got)
	}
}

// With Sampling, each scan hands over the cgroups at or above it, holding
// their effective limit, the fullest first; by usage (page cache too),
// not the working set oom_risk weighs.
func TestWatcherHandsOverHotCgroups(t *testing.T) {
	f := newFixture(t, false, 16*1024, 0)
	f.cgroup("/warm", 64*mib, 54*mib, 0)
	f.cgroup("/full", 64*mib, 63*mib, 40*mib)   // mostly page cache: sampled all the same
	f.cgroup("/full/child", 128*mib, 10*mib, 0) // its parent's limit holds it: not its own
	f.cgroup("/cool", 64*mib, 20*mib, 0)
	w := Watcher{Source: f.src, Detector: Detector{Threshold: 0.9}, Sampling: 0.8}
	s, err := w.check()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(s.hot, []string{"/full", "/warm"}) {
		t.Errorf("hot %q, want /full then /warm", s.hot)
	}
	if got, want := w.level(64*mib), int64(64*mib*8/10); got != want {
		t.Errorf("notification level %d, want Sampling's %d (below the re-arm level)", got, want)
	}
}
