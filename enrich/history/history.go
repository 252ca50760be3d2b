// Package history keeps the recent memory usage of the cgroups close to
// their limits, so that a kill can say how its cgroup got there: a leak
// climbing for a minute, or a spike within the last second.
//
// Sampling every cgroup every second would wake an idle node for nothing.
// So the oom_risk watcher, which already learns (from the kernel's
// notifications on cgroup v1, its scans on v2) which cgroups sit above a
// level, hands those over, and only they are sampled, once a second, while
// there are any. A quiet node has none, and no timer runs.
package history

import (
	"context"
	"sync"
	"time"

	"github.com/oomtrace/oomtrace/internal/kfile"
	"github.com/oomtrace/oomtrace/kernel/cgroupfs"
	"golang.org/x/sys/unix"
)

// Defaults: what a kill shows, and how often it was sampled.
const (
	DefaultWindow = time.Minute
	DefaultEvery  = time.Second
	// DefaultLevel is the share of its limit above which a cgroup is
	// sampled.
	DefaultLevel = 0.8
	// MaxHot bounds the cgroups sampled at once, the fullest first: usage
	// counts page cache, and a node can hold hundreds of cgroups full of
	// it; each costs a read a second.
	MaxHot = 64
)

// Sample is a cgroup's usage at one time.
type Sample struct {
	At         time.Time
	UsageBytes int64
}

// Recorder samples the hot cgroups. Safe for concurrent use.
type Recorder struct {
	Hierarchy cgroupfs.Hierarchy
	Window    time.Duration // 0: DefaultWindow
	Every     time.Duration // 0: DefaultEvery

	mu     sync.Mutex
	series map[string]*series // by path; hot ones sampled, cold ones kept for a window
	wake   chan struct{}
	now    func() time.Time
}

type series struct {
	hot     bool
	samples []Sample // oldest first, at most a window's
}

func (r *Recorder) window() time.Duration { return cmpOr(r.Window, DefaultWindow) }
func (r *Recorder) every() time.Duration  { return cmpOr(r.Every, DefaultEvery) }

func cmpOr(d, def time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return def
}

func (r *Recorder) init() {
	if r.series == nil {
		r.series = map[string]*series{}
		r.wake = make(chan struct{}, 1)
	}
	if r.now == nil {
		r.now = time.Now
	}
}

// SetHot says which cgroups (paths in Hierarchy) are above the level now,
// the fullest first (the first MaxHot are sampled); the others stop being
// sampled, their samples kept for a window. A cgroup that turns hot is
// sampled at once.
func (r *Recorder) SetHot(paths []string) {
	paths = paths[:min(len(paths), MaxHot)]
	r.mu.Lock()
	r.init()
	was := map[string]bool{}
	for p, s := range r.series {
		was[p], s.hot = s.hot, false
	}
	woke := false
	for _, p := range paths {
		s := r.series[p]
		if s == nil {
			s = &series{}
			r.series[p] = s
		}
		s.hot, woke = true, woke || !was[p]
	}
	r.mu.Unlock()
	if woke {
		select {
		case r.wake <- struct{}{}:
		default:
		}
	}
}

// Samples returns path's samples of the window up to until (a kill's
// time: the sampler goes on while the kill waits to be written), oldest
// first; nil when it was not sampled.
func (r *Recorder) Samples(path string, until time.Time) []Sample {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.init()
	s := r.series[path]
	if s == nil {
		return nil
	}
	from := until.Add(-r.window())
	var out []Sample
	for _, x := range s.samples {
		if !x.At.Before(from) && !x.At.After(until) {
			out = append(out, x)
		}
	}
	if out == nil {
		out = []Sample{}
	}
	return out
}

// Run samples until ctx ends: every Every while some cgroup is hot, and
// not at all (no timer) while none is.
func (r *Recorder) Run(ctx context.Context) {
	r.mu.Lock()
	r.init()
	wake := r.wake
	r.mu.Unlock()
	var tick *time.Ticker
	defer func() {
		if tick != nil {
			tick.Stop()
		}
	}()
	for {
		var c <-chan time.Time
		if r.sample() {
			if tick == nil {
				tick = time.NewTicker(r.every())
			}
			c = tick.C
		} else if tick != nil {
			tick.Stop()
			tick = nil
		}
		select {
		case <-ctx.Done():
			return
		case <-c:
		case <-wake:
		}
	}
}

// sample reads each hot cgroup's usage once, drops what is older than a
// window and the series with nothing left, and says whether any is hot.
func (r *Recorder) sample() (anyHot bool) {
	r.mu.Lock()
	var hot []string
	for p, s := range r.series {
		if s.hot {
			hot = append(hot, p)
		}
	}
	r.mu.Unlock()
	// Read without the lock: a kill's lookup does not wait for the files.
	read := make(map[string]*int64, len(hot))
	gone := map[string]bool{}
	for _, p := range hot {
		v, err := r.usage(p)
		switch {
		case err == nil && v != nil:
			read[p] = v
		case err != nil && cgroupfs.Removed(err):
			gone[p] = true
		}
	}
	now := r.now()
	from := now.Add(-r.window())
	r.mu.Lock()
	defer r.mu.Unlock()
	for p, s := range r.series {
		if v, ok := read[p]; ok && s.hot {
			s.samples = append(s.samples, Sample{At: now, UsageBytes: *v})
		}
		if gone[p] {
			s.hot = false
		}
		i := 0
		for i < len(s.samples) && s.samples[i].At.Before(from) {
			i++
		}
		s.samples = append(s.samples[:0], s.samples[i:]...)
		if !s.hot && len(s.samples) == 0 {
			delete(r.series, p)
		}
		anyHot = anyHot || s.hot
	}
	return anyHot
}

func (r *Recorder) usage(path string) (*int64, error) {
	dfd, err := kfile.Open(r.Hierarchy.Dir(path), unix.O_RDONLY|unix.O_DIRECTORY)
	if err != nil {
		return nil, err
	}
	defer kfile.Close(dfd)
	return cgroupfs.ReadValueAt(dfd, r.Hierarchy.Files().Usage)
}
