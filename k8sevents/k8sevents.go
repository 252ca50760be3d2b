// Package k8sevents posts a Kubernetes Event on the Pod for each OOM kill
// the tracer sees in it (the daemon's opt-in --k8s-events).
//
// Why: the kubelet's own report of an OOM kill is the container status
// reason OOMKilled, set only when the container's main process dies, and
// an Event posted on the Node, not the Pod (kubernetes/kubernetes#69676). A
// worker process killed inside a container whose main process survives
// leaves no trace on the Pod at all. These Events are on the Pod
// (involvedObject kind Pod, with its uid, and fieldPath
// spec.containers{NAME} when the container is known), so `kubectl describe
// pod` and `kubectl get events --field-selector involvedObject.name=POD`
// show them.
//
// Kills are aggregated: at most one API write per (pod uid, reason) per
// Options.Window. The first kill of a pod creates its Event; the kills that
// follow within the window are counted, and the Event is patched (count,
// lastTimestamp, the latest kill's message) once the window since the last
// write has passed: at the first kill after it, or within a second of its
// end by the worker's sweep. An OOM loop of hundreds of kills a minute is
// one write per pod per minute.
//
// Kill never blocks: it puts the kill on a bounded queue (a full queue
// drops it and counts the drop), and Run's goroutine does the API calls,
// each with a timeout. API errors go to Options.OnError; none is fatal.
//
// API use, all in the Pod's namespace, core group (""), resource events:
// create, and patch (a JSON merge patch of count, lastTimestamp and
// message). Nothing is read: no get, list or watch of Pods or Events. That
// is the whole of the ClusterRole in deploy/kubernetes/daemonset.yaml, and
// TestManifestRBACMatchesCode keeps the two equal.
//
// The calls go through API, two methods. InCluster implements it with
// net/http alone, as the pod's service account: the package links neither
// client-go nor k8s.io/api nor k8s.io/apimachinery (they added some 50 MB
// to the daemon's binary, and 20 MiB to its idle memory, on every node,
// --k8s-events or not); Event is core/v1 Event's wire format, which the
// tests check against client-go's types.
package k8sevents

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

const (
	// Reason is the Events' reason. OOMKilled is the word Kubernetes users
	// already know and search for: the kubelet's container status reason
	// (kubectl get pod shows it as the pod's STATUS) for the same kernel
	// action. The kubelet uses it for no Event (its node Event is
	// SystemOOM; node-problem-detector's, from the kernel log, is
	// OOMKilling, also on the Node), so an Event of this reason on a Pod is
	// ours, and Source.Component says so again.
	Reason = "OOMKilled"
	// Component is Source.Component and ReportingController.
	Component = "oomtrace"
)

// ErrClosed is returned by Run and Flush once the Poster is closed.
var ErrClosed = errors.New("k8sevents: poster closed")

// KillInfo is one OOM kill of a process in a pod.
type KillInfo struct {
	// The victim's pod. Namespace and Pod are required (a kill without
	// them is skipped: there is no Pod to post on); PodUID is the
	// involvedObject's uid and the aggregation key (namespace/name when
	// empty). Container is the container's name in the pod spec, "" when
	// unknown.
	Namespace, Pod, PodUID, Container string

	VictimComm string
	VictimPID  uint32 // host pid
	VictimRSS  uint64 // bytes; 0 when unknown (left out of the message)

	// The task whose allocation ran the OOM killer ("" and 0: unknown).
	TriggerComm string
	TriggerPID  uint32

	// Limit is which limit fired: "container", "pod", "node", or ""
	// unknown (another word is printed as given). LimitBytes is its size:
	// the memory cgroup's limit, or the node's memory for "node"; nil when
	// unknown.
	Limit      string
	LimitBytes *int64

	// Time of the kill; the zero time means Options.Now() at Kill.
	Time time.Time
}

// Options configure a Poster. Only NodeName is needed; zero values take
// the defaults given.
type Options struct {
	// NodeName is Source.Host and ReportingInstance: the node the tracer
	// runs on (in the DaemonSet, env NODE_NAME from spec.nodeName).
	NodeName string
	// Window is the aggregation period: at most one API write per pod per
	// Window. Default one minute.
	Window time.Duration
	// Now is the clock (for tests). Default time.Now.
	Now func() time.Time
	// OnError receives every failed API write, from the worker goroutine
	// (one call at a time): it must not block for long. Default: errors
	// are only counted (Stats.Errors).
	OnError func(error)

	// QueueSize bounds the kills waiting for the worker. Default 256.
	QueueSize int
	// MaxPods bounds the pods whose aggregates are remembered; at the
	// bound, a new pod makes the least recently killed one forgotten (its
	// pending count written first). Default 1024.
	MaxPods int
	// Forget is how long a pod's aggregate is kept after its last kill;
	// a kill after that starts a new Event. Default 10 minutes, at least
	// Window.
	Forget time.Duration
	// Timeout bounds each API call, and at shutdown all of the final
	// writes together. Default 10 seconds.
	Timeout time.Duration
}

// Stats are a Poster's counters since New.
type Stats struct {
	Queued  uint64 // kills put on the queue
	Dropped uint64 // kills dropped: queue full, or Kill after Close
	Skipped uint64 // kills without namespace or pod name
	Created uint64 // Events created
	Patched uint64 // Events patched with a new count
	Errors  uint64 // errors passed to OnError: failed API writes, counts lost at shutdown
	Tracked int    // pods whose aggregate is remembered now
}

// Poster posts the Events. Its methods are safe for concurrent use.
type Poster struct {
	api     API
	node    string
	window  time.Duration
	now     func() time.Time
	onError func(error)
	maxPods int
	forget  time.Duration
	timeout time.Duration
	tick    time.Duration

	queue chan item

	mu      sync.RWMutex // guards closed and started; Kill holds it shared
	closed  bool
	started bool
	stop    chan struct{} // closed by Close
	done    chan struct{} // closed when Run returns

	queued, dropped, skipped, created, patched, errs atomic.Uint64
	tracked                                          atomic.Int64

	// The worker's own state (Run's goroutine only).
	pods     map[key]*entry
	lastNano int64
}

// item is a kill, or a Flush's marker (kill nil).
type item struct {
	kill  *KillInfo
	flush chan struct{}
}

// key is the aggregation key: one Event per pod and reason.
type key struct{ pod, reason string }

// entry is a pod's aggregate.
type entry struct {
	namespace, pod, uid string
	fieldPath           string // of the Event's first kill
	name                string // the Event's name; "" until created
	first, last         time.Time
	written             int32 // kills in the Event as last written
	pending             int32 // kills since
	message             string
	lastWrite           time.Time // last write attempt, success or not
	lastSeen            time.Time // Now() at the last kill
}

// New returns a Poster writing through api (InCluster's, in a pod).
// Nothing is posted until Run runs; kills before that wait on the queue
// (and are lost if Close comes first).
func New(api API, opts Options) *Poster {
	p := &Poster{
		api:     api,
		node:    opts.NodeName,
		window:  opts.Window,
		now:     opts.Now,
		onError: opts.OnError,
		maxPods: opts.MaxPods,
		forget:  opts.Forget,
		timeout: opts.Timeout,
		stop:    make(chan struct{}),
		done:    make(chan struct{}),
		pods:    map[key]*entry{},
	}
	if p.window <= 0 {
		p.window = time.Minute
	}
	if p.now == nil {
		p.now = time.Now
	}
	if p.maxPods <= 0 {
		p.maxPods = 1024
	}
	if p.forget <= 0 {
		p.forget = 10 * time.Minute
	}
	p.forget = max(p.forget, p.window)
	if p.timeout <= 0 {
		p.timeout = 10 * time.Second
	}
	p.tick = min(time.Second, p.window)
	size := opts.QueueSize
	if size <= 0 {
		size = 256
	}
	p.queue = make(chan item, size)
	return p
}

// Kill queues one kill and returns at once. A kill without namespace or
// pod name is skipped; one that finds the queue full, or comes after
// Close, is dropped; both are counted (Stats).
func (p *Poster) Kill(info KillInfo) {
	if info.Namespace == "" || info.Pod == "" {
		p.skipped.Add(1)
		return
	}
	if info.Time.IsZero() {
		info.Time = p.now()
	}
	p.mu.RLock()
	defer p.mu.RUnlock()
	if p.closed {
		p.dropped.Add(1)
		return
	}
	select {
	case p.queue <- item{kill: &info}:
		p.queued.Add(1)
	default:
		p.dropped.Add(1)
	}
}

// Run is the worker: it makes the API calls until ctx is done or Close is
// called, then handles the kills still queued and writes every pending
// count, whether its window has ended or not, within Options.Timeout, and
// returns nil. The Poster is closed from then on, as by Close. Call it
// once, in its own goroutine; a second call returns an error, and a call
// after Close returns ErrClosed.
func (p *Poster) Run(ctx context.Context) error {
	p.mu.Lock()
	switch {
	case p.closed:
		p.mu.Unlock()
		return ErrClosed
	case p.started:
		p.mu.Unlock()
		return errors.New("k8sevents: Run called twice")
	}
	p.started = true
	p.mu.Unlock()
	defer close(p.done)

	tick := time.NewTicker(p.tick)
	defer tick.Stop()
	for {
		select {
		case it := <-p.queue:
			p.handle(ctx, it)
		case <-tick.C:
			p.sweep(ctx, false)
		case <-ctx.Done():
			p.shutdown(ctx)
			return nil
		case <-p.stop:
			p.shutdown(ctx)
			return nil
		}
	}
}

// Close stops the Poster: later kills are dropped, and Close waits for Run
// to write what is pending and return (at most about Options.Timeout once
// the current API call ends). Without a running Run it returns at once.
// Calling it again does nothing.
func (p *Poster) Close() {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		<-p.doneIfStarted()
		return
	}
	p.closed = true
	close(p.stop)
	p.mu.Unlock()
	<-p.doneIfStarted()
}

var closedChan = func() chan struct{} { c := make(chan struct{}); close(c); return c }()

func (p *Poster) doneIfStarted() <-chan struct{} {
	p.mu.RLock()
	defer p.mu.RUnlock()
	if !p.started {
		return closedChan
	}
	return p.done
}

// Flush waits until the worker has handled every kill queued before the
// call and has written every pending count whose window has ended by
// Options.Now. It returns ctx's error if ctx ends first (as it does when
// no Run is running), and ErrClosed if the Poster is closed first. Tests
// use it with a fake clock; a daemon needs only Run and Close.
func (p *Poster) Flush(ctx context.Context) error {
	p.mu.RLock()
	closed := p.closed
	p.mu.RUnlock()
	if closed {
		return ErrClosed
	}
	marker := make(chan struct{})
	select {
	case p.queue <- item{flush: marker}:
	case <-ctx.Done():
		return ctx.Err()
	case <-p.stop:
		return ErrClosed
	}
	select {
	case <-marker:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-p.done:
		select {
		case <-marker: // handled in the shutdown's drain
			return nil
		default:
			return ErrClosed
		}
	}
}

// Stats returns the counters.
func (p *Poster) Stats() Stats {
	return Stats{
		Queued:  p.queued.Load(),
		Dropped: p.dropped.Load(),
		Skipped: p.skipped.Load(),
		Created: p.created.Load(),
		Patched: p.patched.Load(),
		Errors:  p.errs.Load(),
		Tracked: int(p.tracked.Load()),
	}
}

func (p *Poster) handle(ctx context.Context, it item) {
	if it.kill == nil {
		p.sweep(ctx, false)
		close(it.flush)
		return
	}
	k := it.kill
	now := p.now()
	id := key{k.PodUID, Reason}
	if k.PodUID == "" {
		id.pod = k.Namespace + "/" + k.Pod
	}
	e := p.pods[id]
	if e == nil {
		if len(p.pods) >= p.maxPods {
			p.evictOldest(ctx)
		}
		e = &entry{namespace: k.Namespace, pod: k.Pod, uid: k.PodUID, first: k.Time, last: k.Time}
		if k.Container != "" {
			e.fieldPath = "spec.containers{" + k.Container + "}"
		}
		p.pods[id] = e
		p.tracked.Store(int64(len(p.pods)))
	}
	e.pending++
	if k.Time.After(e.last) {
		e.last = k.Time
	}
	e.message = message(k)
	e.lastSeen = now
	if e.lastWrite.IsZero() || now.Sub(e.lastWrite) >= p.window {
		p.write(ctx, e, now)
	}
}

// sweep writes the pending counts whose window has ended (all of them when
// force) and forgets the pods idle longer than Forget.
func (p *Poster) sweep(ctx context.Context, force bool) {
	now := p.now()
	for id, e := range p.pods {
		if e.pending > 0 && (force || now.Sub(e.lastWrite) >= p.window) {
			if force && ctx.Err() != nil {
				continue // counted by shutdown
			}
			p.write(ctx, e, now)
		}
		if !force && e.pending == 0 && now.Sub(e.lastSeen) > p.forget {
			delete(p.pods, id)
		}
	}
	p.tracked.Store(int64(len(p.pods)))
}

// evictOldest forgets the least recently killed pod, writing its pending
// count first.
func (p *Poster) evictOldest(ctx context.Context) {
	var oldest key
	var oe *entry
	for id, e := range p.pods {
		if oe == nil || e.lastSeen.Before(oe.lastSeen) {
			oldest, oe = id, e
		}
	}
	if oe == nil {
		return
	}
	if oe.pending > 0 {
		p.write(ctx, oe, p.now())
	}
	delete(p.pods, oldest)
}

func (p *Poster) shutdown(ctx context.Context) {
	// Closed from now on, whether by Close or by ctx: later kills are
	// dropped and counted rather than left on a queue nobody reads.
	p.mu.Lock()
	p.closed = true
	p.mu.Unlock()
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), p.timeout)
	defer cancel()
	for drained := false; !drained; {
		select {
		case it := <-p.queue:
			p.handle(fctx, it)
		default:
			drained = true
		}
	}
	p.sweep(fctx, true)
	lost := 0
	for _, e := range p.pods {
		if e.pending > 0 {
			lost++
		}
	}
	if lost > 0 {
		p.report(fmt.Errorf("k8sevents: shutdown: the counts of %d pods not written: %w", lost, fctx.Err()))
	}
}

// write creates the pod's Event, or patches it with the new count; a
// failure leaves the kills pending for the next window.
func (p *Poster) write(ctx context.Context, e *entry, now time.Time) {
	if ctx.Err() != nil {
		return // stopping: shutdown writes it with its own deadline, or counts it
	}
	e.lastWrite = now
	count := e.written + e.pending
	cctx, cancel := context.WithTimeout(ctx, p.timeout)
	defer cancel()
	if e.name != "" {
		patch, err := json.Marshal(struct {
			Count         int32  `json:"count"`
			LastTimestamp Time   `json:"lastTimestamp"`
			Message       string `json:"message"`
		}{count, NewTime(e.last), e.message})
		if err != nil {
			panic(err) // cannot happen: plain fields
		}
		err = p.api.PatchEvent(cctx, e.namespace, e.name, patch)
		if err == nil {
			p.patched.Add(1)
			e.written, e.pending = count, 0
			return
		}
		if !errors.Is(err, ErrNotFound) {
			p.report(fmt.Errorf("k8sevents: patching Event %s/%s of pod %s (count %d): %w", e.namespace, e.name, e.pod, count, err))
			return
		}
		// Gone (Events live an hour by default, or it was deleted):
		// create a new one with the whole count.
		e.name = ""
	}
	ev := p.event(e, count)
	if err := p.api.CreateEvent(cctx, ev); err != nil {
		p.report(fmt.Errorf("k8sevents: creating Event for pod %s/%s (count %d): %w", e.namespace, e.pod, count, err))
		return
	}
	p.created.Add(1)
	e.name = ev.Name
	e.written, e.pending = count, 0
}

func (p *Poster) event(e *entry, count int32) *Event {
	return &Event{
		APIVersion: "v1",
		Kind:       "Event",
		ObjectMeta: ObjectMeta{Name: p.eventName(e.pod), Namespace: e.namespace},
		InvolvedObject: ObjectReference{
			Kind:       "Pod",
			APIVersion: "v1",
			Namespace:  e.namespace,
			Name:       e.pod,
			UID:        e.uid,
			FieldPath:  e.fieldPath,
		},
		Reason:              Reason,
		Message:             e.message,
		Type:                EventTypeWarning,
		Source:              EventSource{Component: Component, Host: p.node},
		FirstTimestamp:      NewTime(e.first),
		LastTimestamp:       NewTime(e.last),
		Count:               count,
		ReportingController: Component,
		ReportingInstance:   p.node,
	}
}

// eventName is POD.<hex nanoseconds>, as the kubelet's recorder names
// Events, unique within this Poster even under a fake clock; the pod part
// is cut so that the name stays a DNS subdomain of at most 253 bytes.
func (p *Poster) eventName(pod string) string {
	n := p.now().UnixNano()
	if n <= p.lastNano {
		n = p.lastNano + 1
	}
	p.lastNano = n
	suffix := fmt.Sprintf(".%x", n)
	if limit := 253 - len(suffix); len(pod) > limit {
		pod = pod[:limit]
		for len(pod) > 0 && (pod[len(pod)-1] == '.' || pod[len(pod)-1] == '-') {
			pod = pod[:len(pod)-1]
		}
	}
	return pod + suffix
}

func (p *Poster) report(err error) {
	p.errs.Add(1)
	if p.onError != nil {
		p.onError(err)
	}
}
