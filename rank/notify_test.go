package rank

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/oomtrace/oomtrace/enrich/cgroups"
	"github.com/oomtrace/oomtrace/internal/oomtest"
)

// On cgroup v1 the watcher scans only when the kernel says something
// changed: not at all while the node is quiet (its Interval here is an
// hour, so any scan seen was woken by a notification), once a cgroup is
// created, once a limit is written, once usage crosses a registered level
// either way.
// No OOM is provoked: the hog holds 40 MiB below a 64 MiB limit, against
// a threshold of 50%.
func TestWatcherWakesOnlyWhenNotified(t *testing.T) {
	oomtest.RequireRoot(t)
	h := oomtest.MustHierarchy(t)
	if h.V2 {
		t.Skip("cgroup v2 offers no memory usage levels: the watcher polls there, as TestRankWatcherRun checks")
	}
	parent := oomtest.NewCgroup(t, h, nil, "notify", 2*limit64)

	var mu sync.Mutex
	var risks []Risk
	w := &Watcher{
		Source:    Source{Hierarchy: cgroups.Hierarchy{Root: h.Root, V2: h.V2}, ProcRoot: "/proc"},
		Interval:  time.Hour,
		Detector:  Detector{Threshold: 0.5},
		OnRisk:    func(r Risk) { mu.Lock(); risks = append(risks, r); mu.Unlock() },
		OnError:   func(err error) { t.Errorf("scan: %v", err) },
		OnPolling: func(err error) { t.Errorf("polling instead of notifications: %v", err) },
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); !cond(); {
			if time.Now().After(deadline) {
				t.Fatalf("no %s within 10 s (%d scans)", what, w.Scans())
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	// The first scan, and the one that follows new registrations.
	waitFor("first scans", func() bool { return w.Scans() >= 2 })
	// quiet waits for the watcher to settle (the follow-up scan after new
	// registrations comes 200 ms or 50 scan durations later, which on a
	// loaded machine can be a second) and then for a whole second without
	// a scan. A watcher woken by its own registrations, or polling, never
	// gets there.
	quiet := func(what string) uint64 {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); {
			n := w.Scans()
			time.Sleep(time.Second)
			if w.Scans() == n {
				return n
			}
		}
		t.Fatalf("%s: no quiet second in 10 s (%d scans)", what, w.Scans())
		return 0
	}
	n := quiet("idle")

	cg := oomtest.NewCgroup(t, h, parent, "app", limit64)
	waitFor("scan after a cgroup was created", func() bool { return w.Scans() > n })
	n = quiet("after the new cgroup")

	// A limit written is a scan; its level is registered anew. With the
	// limit doubled, the hog's 40 MiB stay below the threshold...
	setLimit := func(bytes int64) {
		t.Helper()
		n = w.Scans()
		if err := cg.SetLimit(bytes); err != nil {
			t.Fatal(err)
		}
		waitFor("scan after a limit was written", func() bool { return w.Scans() > n })
	}
	setLimit(2 * limit64)
	hog, err := oomtest.Hog{Cgroup: cg, MB: 40, Hold: true, Comm: "notifyhog"}.Start(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(hog.Stop)
	quiet("hog below the threshold")
	mu.Lock()
	if len(risks) > 0 {
		t.Errorf("risk below the threshold: %+v", risks)
	}
	mu.Unlock()
	// ...and halved again, they are above it.
	setLimit(limit64)
	waitFor("oom_risk for the new cgroup", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(risks) > 0
	})
	mu.Lock()
	r := risks[0]
	mu.Unlock()
	if r.CgroupID != cg.ID || r.Victim == nil || r.Victim.Comm != "notifyhog" {
		t.Errorf("risk %+v: want cgroup %d (%s), victim notifyhog", r, cg.ID, cg.Path)
	}

	n = quiet("hog above the threshold")
	hog.Stop()
	waitFor("scan after usage fell below the level", func() bool { return w.Scans() > n })
	mu.Lock()
	defer mu.Unlock()
	if len(risks) != 1 {
		t.Errorf("%d risks, want 1: %+v", len(risks), risks)
	}
}

// Where the kernel cannot notify, the watcher says why and polls.
func TestNotifierRefusals(t *testing.T) {
	if _, err := newNotifier(Source{Hierarchy: cgroups.Hierarchy{Root: t.TempDir(), V2: true}}); !errors.Is(err, errNoLevels) {
		t.Errorf("cgroup v2: %v, want errNoLevels", err)
	}
	if _, err := newNotifier(Source{Hierarchy: cgroups.Hierarchy{Root: t.TempDir()}}); err == nil {
		t.Error("a v1 tree without cgroup.event_control: no error")
	}
}
