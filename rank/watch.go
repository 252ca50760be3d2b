package rank

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"sync/atomic"
	"time"
)

// Risk is a cgroup that just crossed the threshold: what the daemon's
// oom_risk event says.
type Risk struct {
	CgroupPath string  `json:"cgroup_path"`
	CgroupID   uint64  `json:"cgroup_id"`
	Usage      int64   `json:"usage_bytes"`
	WorkingSet int64   `json:"working_set_bytes"`
	Limit      int64   `json:"limit_bytes"` // its effective limit: only a cgroup holding it is reported
	LimitPath  string  `json:"limit_path"`  // the cgroup holding Limit (itself)
	Ratio      float64 `json:"ratio"`       // WorkingSet / Limit
	Threshold  float64 `json:"threshold"`
	TotalPages uint64  `json:"totalpages"` // what Victim's score is computed against
	Processes  int     `json:"processes"`  // killable processes in the subtree
	// Victim is the process an OOM there would kill now; nil when every
	// process in the subtree is unkillable.
	Victim *Candidate `json:"victim"`
	Tie    bool       `json:"tie,omitempty"`
}

// Watcher scans the memory cgroups and calls OnRisk for each crossing. One
// goroutine at a time may use it.
//
// Where the kernel can notify (cgroup v1 with a writable hierarchy), it
// scans only when told: a cgroup's usage crossed the re-arm level of its
// limit, a cgroup was created, or a limit written. It polls every Interval
// only while some cgroup's usage sits at or above that level (the working
// set can then cross the threshold with no change of usage: the kernel
// trades page cache for anonymous memory), so a quiet node costs no
// wake-ups. Elsewhere it polls every Interval.
type Watcher struct {
	Source   Source
	Interval time.Duration
	Detector Detector // Threshold 0 disables the watcher
	OnRisk   func(Risk)
	OnError  func(error) // nil: errors are dropped and the next tick tries again
	// OnPolling, when set, hears once why the watcher polls every
	// Interval instead of waiting for the kernel's notifications.
	OnPolling func(reason error)
	// Sampling, a share of the limit (0: none), and OnHot: after each
	// scan, OnHot hears the cgroups whose usage is at or above Sampling of
	// their limit (of those holding their effective limit). Where the
	// kernel notifies, it is asked to at that level too, so that a cgroup
	// climbing through it is heard of at once.
	Sampling float64
	OnHot    func(paths []string)

	r     *reader
	scans atomic.Uint64
}

// cpuShare stretches the wait between two checks to this many times the
// last one's duration, so that a huge tree or a slow kernel never keeps the
// watcher above 1/50 of a CPU, however often it is notified or Interval says.
const cpuShare = 50

// notifiedGap is the least time between the starts of two scans woken by
// notifications. Bursts coalesce: a thousand containers starting, or an
// OOM storm, where each kill takes a cgroup's usage down through its level
// and the next allocation back up, cost at most one scan a second (and at
// most one oom_risk line a second per cgroup), however often the kernel
// signals.
const notifiedGap = time.Second

// settle is how soon the watcher scans again after registering new cgroups:
// what changed between a scan's reads and the registration was not signalled.
const settle = 200 * time.Millisecond

// Scans is how many scans Run has made: how often it woke up.
func (w *Watcher) Scans() uint64 { return w.scans.Load() }

// Run checks until ctx is done. Disabled (no threshold or no interval), it
// returns at once: no goroutine, no timer, zero wake-ups.
func (w *Watcher) Run(ctx context.Context) error {
	if w.Detector.Threshold <= 0 || w.Interval <= 0 {
		return nil
	}
	note, err := newNotifier(w.Source)
	if err != nil {
		w.polling(err)
	} else {
		defer func() {
			if note != nil {
				note.close()
			}
		}()
	}
	for {
		start := time.Now()
		s, err := w.check()
		w.scans.Add(1)
		if err != nil && w.OnError != nil {
			w.OnError(err)
		}
		for _, r := range s.risks {
			w.OnRisk(r)
		}
		if w.OnHot != nil && s.nodes != nil {
			w.OnHot(s.hot)
		}
		pace := cpuShare * time.Since(start)
		next := time.Duration(-1) // no timer: wait for a notification
		if note == nil || s.near || err != nil {
			next = max(w.Interval, pace)
		}
		if note != nil && s.nodes != nil {
			added, err := note.sync(s.nodes, w.level)
			switch {
			case err != nil:
				w.polling(err)
				note.close()
				note, next = nil, max(w.Interval, pace)
			case added > 0:
				// See notifier.sync: once more, soon.
				next = max(settle, pace)
			}
		}
		var tick <-chan time.Time
		var timer *time.Timer
		if next >= 0 {
			timer = time.NewTimer(next)
			tick = timer.C
		}
		var notified <-chan struct{}
		if note != nil {
			notified = note.c
		}
		ok := w.wait(ctx, tick, notified, max(pace, notifiedGap)-time.Since(start))
		if timer != nil {
			timer.Stop()
		}
		if !ok {
			return nil
		}
	}
}

// wait blocks until the tick or a notification; after a notification, it
// waits out pace too. False when ctx is done.
func (w *Watcher) wait(ctx context.Context, tick <-chan time.Time, notified <-chan struct{}, pace time.Duration) bool {
	select {
	case <-ctx.Done():
		return false
	case <-tick:
		return true
	case <-notified:
	}
	if pace <= 0 {
		return true
	}
	t := time.NewTimer(pace)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// polling reports, once, why the watcher polls.
func (w *Watcher) polling(reason error) {
	if w.OnPolling != nil {
		w.OnPolling(reason)
		w.OnPolling = nil
	}
}

// level is the usage at which a limited cgroup enters the band where its
// working set could cross the threshold: the re-arm level, below which
// nothing can be reported nor needs re-arming.
func (w *Watcher) level(limit int64) int64 {
	share := w.Detector.rearm()
	if w.Sampling > 0 {
		share = min(share, w.Sampling)
	}
	return max(1, int64(math.Floor(share*float64(limit))))
}

// Check runs one scan. Its cost is bounded for thousands of cgroups: one
// limit read per cgroup and one usage read per limited one (the walk),
// levels only for cgroups holding their effective limit (only there can an
// OOM happen first; the others' holder covers them), memory.stat only
// where usage is near the threshold (the working set is at most the
// usage), and the processes only of cgroups that just crossed.
func (w *Watcher) Check() ([]Risk, error) {
	s, err := w.check()
	return s.risks, err
}

// scan is what one check found.
type scan struct {
	risks []Risk
	nodes []node   // nil when the walk failed
	near  bool     // some cgroup's usage is at or above its re-arm level
	hot   []string // at or above Sampling, the fullest first
}

func (w *Watcher) check() (scan, error) {
	if w.r == nil {
		w.r = newReader()
	}
	s, d := w.Source, &w.Detector
	nodes, err := s.walk(w.r)
	if err != nil {
		return scan{}, err
	}
	out := scan{nodes: nodes}
	var levels, hot []Level
	for i, n := range nodes {
		if n.effAt != i || n.usage < 0 {
			continue
		}
		l := Level{ID: n.id, Path: n.path, Ratio: float64(n.usage) / float64(max(n.limit, 1)), node: i, usage: n.usage, ws: n.usage}
		if w.Sampling > 0 && l.Ratio >= w.Sampling {
			hot = append(hot, l)
		}
		if l.Ratio >= d.rearm() {
			out.near = true
			if ws, err := s.workingSet(w.r, n); err == nil {
				l.ws, l.Ratio = ws, float64(ws)/float64(max(n.limit, 1))
			}
		}
		levels = append(levels, l)
	}
	slices.SortStableFunc(hot, func(a, b Level) int { return cmp.Compare(b.Ratio, a.Ratio) })
	for _, l := range hot {
		out.hot = append(out.hot, l.Path)
	}
	for _, l := range d.Update(levels) {
		r, err := w.risk(nodes, l)
		if errors.Is(err, errRemoved) {
			continue
		}
		if err != nil {
			return out, err
		}
		out.risks = append(out.risks, r)
	}
	return out, nil
}

// risk reads and scores the processes of a cgroup that crossed.
func (w *Watcher) risk(nodes []node, l Level) (Risk, error) {
	s, n := w.Source, nodes[l.node]
	m, err := s.machine()
	if err != nil {
		return Risk{}, err
	}
	var procs []proc
	for j := l.node; j < n.end; j++ {
		if procs, err = w.r.readProcs(s.ProcRoot, s.dir(nodes[j].path), j, procs); err != nil && !errors.Is(err, errRemoved) {
			return Risk{}, fmt.Errorf("reading processes of %s: %w", nodes[j].path, err)
		}
	}
	total, err := s.totalPages(w.r, n, m)
	if err != nil {
		return Risk{}, err
	}
	r := Risk{CgroupPath: n.path, CgroupID: n.id, Usage: l.usage, WorkingSet: l.ws, Limit: n.limit, LimitPath: n.path,
		Ratio: l.Ratio, Threshold: w.Detector.Threshold, TotalPages: total}
	var cands []Candidate
	cands, r.Processes, _, r.Tie = rankProcs(procs, nodes, total, m.pages, 1)
	if len(cands) > 0 {
		r.Victim = &cands[0]
	}
	return r, nil
}
