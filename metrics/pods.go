package metrics

import (
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// podIdle is how long a pod's series stays after its last kill once the
// runtime no longer lists the pod: long enough for a few scrapes to see the
// last count, short enough that a node churning through pods keeps a
// bounded scrape.
const podIdle = 5 * time.Minute

// Pod is a Kubernetes container as the per-pod series label it.
type Pod struct {
	Namespace, Name, Container, Runtime string
	UID                                 string // to ask whether the pod is still there; not a label
}

type podSeries struct {
	uid  string
	n    float64
	last time.Time
}

// podKills is oomtrace_container_oom_kills_total: OOM kills by namespace,
// pod, container and runtime. Its series go once their pod is gone (the
// runtime no longer lists it, or nobody can say) and no kill came for
// podIdle: pruned when Prometheus scrapes, so no timer runs.
type podKills struct {
	desc  *prometheus.Desc
	now   func() time.Time
	mu    sync.Mutex
	alive func(uid string) bool // nil: nobody can say; a pod is then gone when idle
	byPod map[[4]string]*podSeries
}

func newPodKills() *podKills {
	return &podKills{
		desc: prometheus.NewDesc("oomtrace_container_oom_kills_total",
			"OOM kills by Kubernetes namespace, pod and container (named over the CRI) and runtime; a series goes some minutes after its pod.",
			[]string{"namespace", "pod", "container", "runtime"}, nil),
		now:   time.Now,
		byPod: map[[4]string]*podSeries{},
	}
}

func (p *podKills) add(pod Pod, n int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	key := [4]string{pod.Namespace, pod.Name, pod.Container, pod.Runtime}
	s := p.byPod[key]
	if s == nil {
		s = &podSeries{uid: pod.UID}
		p.byPod[key] = s
	}
	s.n += float64(n)
	s.last = p.now()
	if len(p.byPod) > maxPodSeries {
		p.prune(s.last) // nobody scrapes: bound the memory anyway
	}
}

// maxPodSeries is when a kill prunes the series itself.
const maxPodSeries = 4096

// prune drops the series whose pod is gone and idle.
func (p *podKills) prune(now time.Time) {
	for key, s := range p.byPod {
		if now.Sub(s.last) >= podIdle && (p.alive == nil || !p.alive(s.uid)) {
			delete(p.byPod, key)
		}
	}
}

func (p *podKills) Describe(ch chan<- *prometheus.Desc) { ch <- p.desc }

func (p *podKills) Collect(ch chan<- prometheus.Metric) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.prune(p.now())
	for key, s := range p.byPod {
		ch <- prometheus.MustNewConstMetric(p.desc, prometheus.CounterValue, s.n, key[:]...)
	}
}

// PodKill counts n kills in a Kubernetes container the runtime named.
func (m *Metrics) PodKill(pod Pod, n int) { m.pods.add(pod, n) }

// PodAlive says how to ask whether a pod (by UID) is still there, for
// dropping the series of pods that are gone; nil: only idleness counts.
func (m *Metrics) PodAlive(alive func(uid string) bool) {
	m.pods.mu.Lock()
	m.pods.alive = alive
	m.pods.mu.Unlock()
}
