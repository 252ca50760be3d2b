package integration

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/oomtrace/oomtrace/daemon"
	"github.com/oomtrace/oomtrace/event"
	"github.com/oomtrace/oomtrace/internal/oomtest"
)

// oom.memcg.history: a cgroup that climbs to its limit over seconds, as a
// leak does, has its usage of those seconds in the kill's line, rising; a
// cgroup that sat idle, then was filled at once, has none of its idle time
// (it was never above the sampling level before).
func TestDaemonMemcgHistory(t *testing.T) {
	oomtest.RequireRoot(t)
	h := oomtest.MustHierarchy(t)
	climbing := oomtest.NewCgroup(t, h, nil, "history-climb", 64*mib)
	idle := oomtest.NewCgroup(t, h, nil, "history-idle", 64*mib)
	holder, err := oomtest.Hog{Cgroup: idle, MB: 4, Comm: "idle-holder", Hold: true}.Start(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(holder.Stop)
	// Sampled from 20% of the limit (13 MiB): at 6 MB/s the climb spends
	// some 9 s above it. Where the kernel cannot notify the watcher
	// (cgroup v2) it polls each 200 ms, or 50 times as long as a scan takes
	// (seen at 2-3 s under emulation), and hands the cgroup over then.
	out, _, stop := startDaemonWith(t, func(c *daemon.Config) {
		c.RiskThreshold, c.RiskInterval, c.HistoryLevel = 90, 200*time.Millisecond, 20
	})
	c := snapshot(t, climbing, idle)
	climbStart := time.Now()
	runHogs(t, oomtest.Hog{Cgroup: climbing, MB: 512, Comm: "climber", MBPerSecond: 6})
	fillStart := time.Now()
	runHogs(t, oomtest.Hog{Cgroup: idle, MB: 512, Comm: "filler"})
	want := map[uint64]uint64{climbing.ID: c.delta(t, 0), idle.ID: c.delta(t, 1)}
	got := map[uint64][]event.Kill{}
	collect := func() {
		clear(got)
		out.lines(t, "oom_kill", func(b []byte) {
			var k event.Kill
			if err := json.Unmarshal(b, &k); err != nil {
				t.Fatal(err)
			}
			if _, ok := want[k.Victim.Cgroup.ID]; ok {
				got[k.Victim.Cgroup.ID] = append(got[k.Victim.Cgroup.ID], k)
			}
		})
	}
	enough := func() bool {
		for id, n := range want {
			if uint64(len(got[id])) < n {
				return false
			}
		}
		return true
	}
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if collect(); enough() {
			break
		}
	}
	stop()
	collect()
	for id, n := range want {
		if uint64(len(got[id])) != n {
			t.Fatalf("the daemon wrote %d kills for cgroup %d, the kernel counted %d", len(got[id]), id, n)
		}
	}

	k := got[climbing.ID][0]
	hist := k.OOM.Memcg.History
	t.Logf("climbing cgroup's history: %+v", hist)
	if len(hist) < 2 {
		t.Fatalf("oom.memcg.history %+v: want the climb's samples, a second apart", hist)
	}
	for i, s := range hist {
		// Usage may pass the limit by a few pages: charges that must not
		// fail (page_counter_charge()) go over it (seen: 10 pages, 6.1 arm64).
		if s.Time.Before(climbStart) || s.Time.After(k.Time) || s.UsageBytes < 12*mib || s.UsageBytes > 65*mib {
			t.Errorf("sample %+v: want one during the climb (from %v to the kill at %v), above 20%% of the limit", s, climbStart, k.Time)
		}
		if i > 0 && !s.Time.After(hist[i-1].Time) {
			t.Errorf("samples out of order: %+v", hist)
		}
	}
	if hist[len(hist)-1].UsageBytes <= hist[0].UsageBytes {
		t.Errorf("oom.memcg.history %+v does not climb", hist)
	}

	for _, k := range got[idle.ID] {
		for _, s := range k.OOM.Memcg.History {
			if s.Time.Before(fillStart) {
				t.Errorf("the idle cgroup was sampled while idle: %+v", k.OOM.Memcg.History)
			}
		}
	}
}
