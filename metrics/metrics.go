// Package metrics exposes the daemon's counters to Prometheus and a health
// endpoint. Nothing here runs on a timer: values that live elsewhere (the BPF
// side's lost-record counter) are read when Prometheus scrapes.
package metrics

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/oomtrace/oomtrace/internal/version"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Stages where an event can be lost.
const (
	StageRingbuf = "ringbuf" // the BPF side found the ring buffer full
	StageQueue   = "queue"   // the queue between reader and writer was full
	StageOutput  = "output"  // writing the line failed (disk full, closed pipe)
)

// otherLabel stands for every container past the cardinality bound.
const otherLabel = "other"

// Metrics are the daemon's Prometheus metrics.
type Metrics struct {
	Registry *prometheus.Registry

	kills          *prometheus.CounterVec
	containerKills *prometheus.CounterVec
	lost           *lostCollector
	enrichErrors   *prometheus.CounterVec
	mismatches     prometheus.Counter
	noKills        *prometheus.CounterVec
	allocRefused   *prometheus.CounterVec
	pods           *podKills
	hooks          *prometheus.GaugeVec
	latency        *prometheus.HistogramVec
	// stages: latency's two series, looked up once (each kill observes
	// both; a label lookup hashes the value every time).
	stages map[string]prometheus.Observer

	mu         sync.Mutex
	containers map[string]bool // label values in use
	maxSeries  int
}

// New registers the metrics. maxContainers bounds the container label's
// values: a node running thousands of short-lived containers must not grow
// the scrape without limit; kills past the bound count under "other".
func New(maxContainers int, ringbufLost func() (uint64, error)) *Metrics {
	m := &Metrics{
		Registry: prometheus.NewRegistry(),
		kills: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "oomtrace_kills_total",
			Help: "Processes killed by the OOM killer, by the OOM's constraint (none, cpuset, memory_policy, memcg, unknown).",
		}, []string{"constraint"}),
		containerKills: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "oomtrace_container_kills_total",
			Help: "OOM kills by container name and pod UID (empty outside containers; \"other\" past the cardinality bound).",
		}, []string{"container", "pod_uid"}),
		lost: &lostCollector{ringbuf: ringbufLost, desc: prometheus.NewDesc(
			"oomtrace_events_lost_total",
			"Events lost, by stage: ringbuf (the BPF side found the ring buffer full), queue (output stalled past the queue's bound), output (a write failed).",
			[]string{"stage"}, nil)},
		enrichErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "oomtrace_enrich_errors_total",
			Help: "Enrichment failures by source (cgroup, docker, node); the event is still written.",
		}, []string{"source"}),
		mismatches: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "oomtrace_score_mismatches_total",
			Help: "Kills whose kernel score differs from the oom_badness model.",
		}),
		noKills: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "oomtrace_oom_no_kill_total",
			Help: "OOM decisions that chose nobody (every task in the scope unkillable), by the OOM's constraint; each retry of the allocation counts.",
		}, []string{"constraint"}),
		allocRefused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "oomtrace_alloc_refused_total",
			Help: "Memory requests the kernel refused with ENOMEM (with --alloc-refused), by syscall (fork, vfork, clone, clone3, mmap, mremap, brk) and the rule that refused it (heuristic, strict, rlimit_as, rlimit_data, other); every refusal counts, aggregated lines or not.",
		}, []string{"syscall", "rule"}),
		hooks: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "oomtrace_hook_attached",
			Help: "1 for each attached hook, by function and attach mode (fentry, kprobe, tp_btf, tracepoint).",
		}, []string{"hook", "mode"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "oomtrace_kill_latency_seconds",
			Help: "Time from the kernel's record of a kill to a stage of the daemon: queued (read from the ring buffer, joined, handed to the writer) and written (enriched and its line written).",
			// 50 µs to 5 s, 1-2-5 steps: 2 ms (the kill-to-line
			// target) is a bucket bound; a Docker cache miss waits up
			// to 150 ms.
			Buckets: []float64{50e-6, 100e-6, 200e-6, 500e-6, 1e-3, 2e-3, 5e-3, 10e-3, 20e-3, 50e-3, 0.1, 0.2, 0.5, 1, 2, 5},
		}, []string{"stage"}),
		pods:       newPodKills(),
		containers: map[string]bool{},
		maxSeries:  maxContainers,
	}
	built := version.Read("").Short()
	buildInfo := prometheus.NewGauge(prometheus.GaugeOpts{
		Name:        "oomtrace_build_info",
		Help:        "oomtrace's version; always 1.",
		ConstLabels: prometheus.Labels{"version": built},
	})
	buildInfo.Set(1)
	m.stages = map[string]prometheus.Observer{
		StageQueued:  m.latency.WithLabelValues(StageQueued),
		StageWritten: m.latency.WithLabelValues(StageWritten),
	}
	m.Registry.MustRegister(m.kills, m.containerKills, m.lost, m.enrichErrors, m.mismatches, m.noKills, m.allocRefused, m.pods, m.hooks, m.latency, buildInfo,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// NoKill counts n OOM decisions that chose nobody.
func (m *Metrics) NoKill(constraint string, n int) {
	m.noKills.WithLabelValues(constraint).Add(float64(n))
}

// AllocRefused counts n refused memory requests.
func (m *Metrics) AllocRefused(syscall, rule string, n uint64) {
	m.allocRefused.WithLabelValues(syscall, rule).Add(float64(n))
}

// Hook records an attached hook.
func (m *Metrics) Hook(hook, mode string) { m.hooks.WithLabelValues(hook, mode).Set(1) }

// Kill counts a kill (a victim or a group member).
func (m *Metrics) Kill(constraint, container, podUID string, n int) {
	m.kills.WithLabelValues(constraint).Add(float64(n))
	m.mu.Lock()
	if container != "" && !m.containers[container] {
		if len(m.containers) >= m.maxSeries {
			container, podUID = otherLabel, ""
		} else {
			m.containers[container] = true
		}
	}
	m.mu.Unlock()
	m.containerKills.WithLabelValues(container, podUID).Add(float64(n))
}

// Lost counts events lost at the queue or output stage (the ringbuf stage
// is read from the BPF map).
func (m *Metrics) Lost(stage string, n uint64) {
	switch stage {
	case StageQueue:
		m.lost.queue.Add(n)
	case StageOutput:
		m.lost.output.Add(n)
	}
}

// Stages of a kill's way through the daemon, for Latency.
const (
	StageQueued  = "queued"
	StageWritten = "written"
)

// Latency records how long after the kernel's record a kill reached stage.
func (m *Metrics) Latency(stage string, d time.Duration) {
	o, ok := m.stages[stage]
	if !ok {
		o = m.latency.WithLabelValues(stage)
	}
	o.Observe(d.Seconds())
}

// EnrichError counts an enrichment failure.
func (m *Metrics) EnrichError(source string) { m.enrichErrors.WithLabelValues(source).Inc() }

// ScoreMismatch counts a kill whose kernel score the model did not predict.
func (m *Metrics) ScoreMismatch() { m.mismatches.Inc() }

// lostCollector reports losses; the ring buffer's is read from the BPF map
// when Prometheus scrapes, so no timer polls it.
type lostCollector struct {
	ringbuf       func() (uint64, error)
	queue, output atomic.Uint64
	desc          *prometheus.Desc
}

func (c *lostCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c *lostCollector) Collect(ch chan<- prometheus.Metric) {
	if c.ringbuf != nil {
		if n, err := c.ringbuf(); err != nil {
			ch <- prometheus.NewInvalidMetric(c.desc, err)
		} else {
			ch <- prometheus.MustNewConstMetric(c.desc, prometheus.CounterValue, float64(n), StageRingbuf)
		}
	}
	ch <- prometheus.MustNewConstMetric(c.desc, prometheus.CounterValue, float64(c.queue.Load()), StageQueue)
	ch <- prometheus.MustNewConstMetric(c.desc, prometheus.CounterValue, float64(c.output.Load()), StageOutput)
}
