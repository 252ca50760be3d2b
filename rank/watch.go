package rank

import (
	"context"
	"errors"
	"fmt"
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

// Watcher scans every Interval and calls OnRisk for each crossing. One
// goroutine at a time may use it.
type Watcher struct {
	Source   Source
	Interval time.Duration
	Detector Detector // Threshold 0 disables the watcher
	OnRisk   func(Risk)
	OnError  func(error) // nil: errors are dropped and the next tick tries again

	r *reader
}

// cpuShare stretches the wait between two checks to this many times the
// last one's duration, so that a huge tree or a slow kernel never keeps the
// watcher above 1/50 of a CPU, whatever Interval says.
const cpuShare = 50

// Run checks until ctx is done. Disabled (no threshold or no interval), it
// returns at once: no goroutine, no timer, zero wake-ups.
func (w *Watcher) Run(ctx context.Context) error {
	if w.Detector.Threshold <= 0 || w.Interval <= 0 {
		return nil
	}
	t := time.NewTimer(w.Interval)
	defer t.Stop()
	for {
		start := time.Now()
		risks, err := w.Check()
		if err != nil && w.OnError != nil {
			w.OnError(err)
		}
		for _, r := range risks {
			w.OnRisk(r)
		}
		t.Reset(max(w.Interval, cpuShare*time.Since(start)))
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// Check runs one scan. Its cost is bounded for thousands of cgroups: one
// limit read per cgroup and one usage read per limited one (the walk),
// levels only for cgroups holding their effective limit (only there can an
// OOM happen first; the others' holder covers them), memory.stat only
// where usage is near the threshold (the working set is at most the
// usage), and the processes only of cgroups that just crossed.
func (w *Watcher) Check() ([]Risk, error) {
	if w.r == nil {
		w.r = newReader()
	}
	s, d := w.Source, &w.Detector
	nodes, err := s.walk(w.r)
	if err != nil {
		return nil, err
	}
	var levels []Level
	for i, n := range nodes {
		if n.effAt != i || n.usage < 0 {
			continue
		}
		l := Level{ID: n.id, Path: n.path, Ratio: float64(n.usage) / float64(max(n.limit, 1)), node: i, usage: n.usage, ws: n.usage}
		if l.Ratio >= d.rearm() {
			if ws, err := s.workingSet(w.r, n); err == nil {
				l.ws, l.Ratio = ws, float64(ws)/float64(max(n.limit, 1))
			}
		}
		levels = append(levels, l)
	}
	var risks []Risk
	for _, l := range d.Update(levels) {
		r, err := w.risk(nodes, l)
		if errors.Is(err, errRemoved) {
			continue
		}
		if err != nil {
			return risks, err
		}
		risks = append(risks, r)
	}
	return risks, nil
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
