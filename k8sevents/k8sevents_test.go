package k8sevents

// No API server can run on the CI machine: these tests post to client-go's
// fake clientset (k8s.io/client-go/kubernetes/fake), an in-memory object
// tracker that records every API call, standing in for it through fakeAPI
// (fakeapi_test.go), which implements API on it. fakeAPI turns each Event
// into a core/v1 Event by its JSON, decoded strictly, so the wire format is
// checked against client-go's own type. What the tests check is what the
// Poster asks for (which calls, with which objects and patches) and what
// the tracker holds afterwards; the API server's own validation and
// admission are not exercised. Time is a fake clock (Options.Now) moved by
// the tests, and Flush waits for the worker instead of sleeping. The REST
// client InCluster returns is tested in rest_test.go, against an HTTPS
// test server.
//
// client-go is imported by tests only: the package itself does not link
// it.

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

type harness struct {
	t      *testing.T
	p      *Poster
	client *fake.Clientset
	clock  *fakeClock
	mu     sync.Mutex
	errs   []error
	runErr chan error
}

// newHarness makes a Poster on a fake clientset and a fake clock at t0;
// opts.Now and opts.OnError are the harness's.
func newHarness(t *testing.T, opts Options) *harness {
	t.Helper()
	h := &harness{t: t, client: fake.NewClientset(), clock: &fakeClock{t: t0}, runErr: make(chan error, 1)}
	opts.Now = h.clock.Now
	opts.OnError = func(err error) {
		h.mu.Lock()
		defer h.mu.Unlock()
		h.errs = append(h.errs, err)
	}
	if opts.NodeName == "" {
		opts.NodeName = "node-a"
	}
	h.p = New(&fakeAPI{t: t, cs: h.client}, opts)
	t.Cleanup(h.p.Close)
	return h
}

// run starts the worker and waits until it runs; the test's end closes the
// Poster and checks Run's return.
func (h *harness) run() {
	go func() { h.runErr <- h.p.Run(context.Background()) }()
	h.flush()
	h.t.Cleanup(func() {
		h.p.Close()
		select {
		case err := <-h.runErr:
			if err != nil {
				h.t.Errorf("Run: %v", err)
			}
		case <-time.After(10 * time.Second):
			h.t.Error("Run did not return after Close")
		}
	})
}

func (h *harness) flush() {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := h.p.Flush(ctx); err != nil {
		h.t.Fatalf("Flush: %v", err)
	}
}

func (h *harness) errors() []error {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]error(nil), h.errs...)
}

func (h *harness) events(ns string) []corev1.Event {
	h.t.Helper()
	// The tracker's List is also an action: read it off the record.
	list, err := h.client.Tracker().List(schema.GroupVersionResource{Version: "v1", Resource: "events"},
		schema.GroupVersionKind{Version: "v1", Kind: "Event"}, ns)
	if err != nil {
		h.t.Fatal(err)
	}
	return list.(*corev1.EventList).Items
}

// writes counts the API calls on Events, by verb.
func (h *harness) writes() map[string]int {
	n := map[string]int{}
	for _, a := range h.client.Actions() {
		if a.GetResource().Resource == "events" {
			n[a.GetVerb()]++
		}
	}
	return n
}

func kill(pod string, pid uint32) KillInfo {
	return KillInfo{
		Namespace: "shop", Pod: pod, PodUID: "uid-" + pod, Container: "app",
		VictimComm: "web", VictimPID: pid, VictimRSS: 67_003_596,
		TriggerComm: "web", TriggerPID: pid,
		Limit: "container", LimitBytes: ptr(int64(64 << 20)),
	}
}

func ptr[T any](v T) *T { return &v }

func only(t *testing.T, evs []corev1.Event) corev1.Event {
	t.Helper()
	if len(evs) != 1 {
		t.Fatalf("%d Events, want 1: %+v", len(evs), evs)
	}
	return evs[0]
}

func TestEventOnPod(t *testing.T) {
	h := newHarness(t, Options{NodeName: "node-7"})
	h.run()
	k := kill("web-0", 4242)
	k.Time = t0.Add(-time.Second)
	h.p.Kill(k)
	h.flush()

	ev := only(t, h.events("shop"))
	want := corev1.ObjectReference{Kind: "Pod", APIVersion: "v1", Namespace: "shop", Name: "web-0", UID: "uid-web-0", FieldPath: "spec.containers{app}"}
	if ev.InvolvedObject != want {
		t.Errorf("involvedObject %+v, want %+v", ev.InvolvedObject, want)
	}
	if ev.Namespace != "shop" || !strings.HasPrefix(ev.Name, "web-0.") {
		t.Errorf("Event %s/%s: want namespace shop, name web-0.<hex>", ev.Namespace, ev.Name)
	}
	if ev.Reason != "OOMKilled" || ev.Type != corev1.EventTypeWarning {
		t.Errorf("reason %q type %q, want OOMKilled Warning", ev.Reason, ev.Type)
	}
	if ev.Source != (corev1.EventSource{Component: "oomtrace", Host: "node-7"}) ||
		ev.ReportingController != "oomtrace" || ev.ReportingInstance != "node-7" {
		t.Errorf("source %+v reportingController %q reportingInstance %q, want oomtrace on node-7",
			ev.Source, ev.ReportingController, ev.ReportingInstance)
	}
	const msg = "oomtrace: process web[4242] of container app (rss 63.9 MiB) killed: container memory limit 64.0 MiB hit; allocation by web[4242]"
	if ev.Message != msg {
		t.Errorf("message\n%q, want\n%q", ev.Message, msg)
	}
	if ev.Count != 1 || !ev.FirstTimestamp.Time.Equal(k.Time) || !ev.LastTimestamp.Time.Equal(k.Time) {
		t.Errorf("count %d first %v last %v, want 1 at %v", ev.Count, ev.FirstTimestamp, ev.LastTimestamp, k.Time)
	}
	if s := h.p.Stats(); s.Queued != 1 || s.Created != 1 || s.Patched != 0 || s.Errors != 0 || s.Tracked != 1 {
		t.Errorf("stats %+v", s)
	}
	if errs := h.errors(); len(errs) > 0 {
		t.Errorf("errors: %v", errs)
	}
}

// 100 kills in a minute: one Event, created at the first kill, patched to
// 100 once the minute since is over; two writes in all.
func TestAggregate(t *testing.T) {
	h := newHarness(t, Options{})
	h.run()
	var last time.Time
	for i := range 100 {
		k := kill("web-0", uint32(1000+i))
		k.Time = h.clock.Now()
		last = k.Time
		h.p.Kill(k)
		if i == 0 {
			h.flush() // the Event is created at t0; the rest may be handled late
		}
		h.clock.Add(500 * time.Millisecond) // 100 kills in 50 s
	}
	h.flush()
	if ev := only(t, h.events("shop")); ev.Count != 1 {
		t.Errorf("within the window: count %d, want 1 (the first kill's Event)", ev.Count)
	}
	if w := h.writes(); w["create"] != 1 || w["patch"] != 0 {
		t.Errorf("within the window: writes %v, want one create", w)
	}

	h.clock.Add(11 * time.Second) // 61 s after the first kill
	h.flush()
	ev := only(t, h.events("shop"))
	if ev.Count != 100 {
		t.Errorf("count %d, want 100", ev.Count)
	}
	if !ev.FirstTimestamp.Time.Equal(t0) || ev.LastTimestamp.Unix() != last.Unix() {
		t.Errorf("first %v last %v, want %v and %v", ev.FirstTimestamp, ev.LastTimestamp, t0, last)
	}
	if !strings.Contains(ev.Message, "web[1099]") {
		t.Errorf("message %q: want the latest kill's (pid 1099)", ev.Message)
	}
	if w := h.writes(); w["create"] != 1 || w["patch"] != 1 || len(w) != 2 {
		t.Errorf("writes %v, want one create and one patch", w)
	}
	if s := h.p.Stats(); s.Queued != 100 || s.Created != 1 || s.Patched != 1 || s.Dropped != 0 {
		t.Errorf("stats %+v", s)
	}
}

// An OOM loop: 5 kills a second for 10 minutes, the worker looking every
// second. At most one write per minute, and every kill counted.
func TestOOMLoopWrites(t *testing.T) {
	h := newHarness(t, Options{})
	h.run()
	for range 600 {
		for i := range 5 {
			h.p.Kill(kill("loop-0", uint32(i+1)))
		}
		h.flush()
		h.clock.Add(time.Second)
	}
	h.clock.Add(time.Minute)
	h.flush()
	w := h.writes()
	if n := w["create"] + w["patch"]; w["create"] != 1 || n > 11 {
		t.Errorf("writes %v over 10 minutes: want 1 create and at most 10 patches", w)
	}
	if ev := only(t, h.events("shop")); ev.Count != 3000 {
		t.Errorf("count %d, want 3000", ev.Count)
	}
}

func TestTwoPods(t *testing.T) {
	h := newHarness(t, Options{})
	h.run()
	for i := range 6 {
		pod := []string{"a-0", "b-0"}[i%2]
		h.p.Kill(kill(pod, uint32(i+1)))
	}
	h.flush()
	h.clock.Add(time.Minute)
	h.flush()
	evs := h.events("shop")
	if len(evs) != 2 {
		t.Fatalf("%d Events, want 2: %+v", len(evs), evs)
	}
	seen := map[string]bool{}
	for _, ev := range evs {
		o := ev.InvolvedObject
		if string(o.UID) != "uid-"+o.Name || ev.Count != 3 || !strings.HasPrefix(ev.Name, o.Name+".") {
			t.Errorf("Event %s on %s (uid %s) count %d: want its own pod's, count 3", ev.Name, o.Name, o.UID, ev.Count)
		}
		seen[o.Name] = true
	}
	if !seen["a-0"] || !seen["b-0"] {
		t.Errorf("Events on %v, want a-0 and b-0", seen)
	}
}

// A failed write goes to OnError and leaves its kills pending: retried once
// the window allows, while other pods carry on.
func TestAPIErrors(t *testing.T) {
	h := newHarness(t, Options{})
	h.run()
	fail := map[string]int{"create": 1} // verb -> failures left
	var mu sync.Mutex
	h.client.PrependReactor("*", "events", func(a k8stesting.Action) (bool, runtime.Object, error) {
		mu.Lock()
		defer mu.Unlock()
		if fail[a.GetVerb()] > 0 {
			fail[a.GetVerb()]--
			return true, nil, apierrors.NewInternalError(errors.New("etcd down"))
		}
		return false, nil, nil
	})

	h.p.Kill(kill("a-0", 1))
	h.p.Kill(kill("b-0", 2))
	h.flush()
	errs := h.errors()
	if len(errs) != 1 || !strings.Contains(errs[0].Error(), "creating Event for pod shop/a-0") || !apierrors.IsInternalError(errs[0]) {
		t.Fatalf("errors %v: want the failed create of a-0's Event, wrapping the API error", errs)
	}
	if evs := h.events("shop"); len(evs) != 1 || evs[0].InvolvedObject.Name != "b-0" {
		t.Fatalf("Events %+v: want b-0's alone", evs)
	}

	h.p.Kill(kill("a-0", 3)) // within the window: no retry yet
	h.flush()
	if w := h.writes(); w["create"] != 2 {
		t.Errorf("writes %v: want no retry within the window", w)
	}

	mu.Lock()
	fail["patch"] = 1
	mu.Unlock()
	h.p.Kill(kill("b-0", 4))
	h.clock.Add(time.Minute)
	h.flush() // a-0 created with both kills; b-0's patch fails
	errs = h.errors()
	if len(errs) != 2 || !strings.Contains(errs[1].Error(), "patching Event") {
		t.Fatalf("errors %v: want the failed patch second", errs)
	}
	h.p.Kill(kill("b-0", 5))
	h.clock.Add(time.Minute)
	h.flush()
	counts := map[string]int32{}
	for _, ev := range h.events("shop") {
		counts[ev.InvolvedObject.Name] = ev.Count
	}
	if counts["a-0"] != 2 || counts["b-0"] != 3 || len(counts) != 2 {
		t.Errorf("counts %v, want a-0 2 (after the failed create), b-0 3 (after the failed patch)", counts)
	}
	if s := h.p.Stats(); s.Errors != 2 || s.Created != 2 || s.Patched != 1 {
		t.Errorf("stats %+v", s)
	}
}

// An Event deleted under the Poster (Events expire after an hour by
// default) is created again with the whole count.
func TestEventGone(t *testing.T) {
	h := newHarness(t, Options{Forget: 3 * time.Hour})
	h.run()
	h.p.Kill(kill("a-0", 1))
	h.flush()
	first := only(t, h.events("shop"))
	if err := h.client.Tracker().Delete(schema.GroupVersionResource{Version: "v1", Resource: "events"}, "shop", first.Name); err != nil {
		t.Fatal(err)
	}
	h.clock.Add(time.Hour)
	h.p.Kill(kill("a-0", 2))
	h.flush()
	ev := only(t, h.events("shop"))
	if ev.Name == first.Name || ev.Count != 2 || !ev.FirstTimestamp.Time.Equal(t0) {
		t.Errorf("Event %s count %d first %v: want a new Event, count 2, first %v", ev.Name, ev.Count, ev.FirstTimestamp, t0)
	}
	if errs := h.errors(); len(errs) > 0 {
		t.Errorf("errors %v: a vanished Event is no error", errs)
	}
}

func TestQueueFull(t *testing.T) {
	h := newHarness(t, Options{QueueSize: 4})
	for i := range 10 { // no worker yet: the queue fills
		h.p.Kill(kill("a-0", uint32(i+1)))
	}
	if s := h.p.Stats(); s.Queued != 4 || s.Dropped != 6 {
		t.Errorf("stats %+v, want 4 queued, 6 dropped", s)
	}
	h.run() // handles the 4 queued kills
	h.clock.Add(time.Minute)
	h.flush()
	if ev := only(t, h.events("shop")); ev.Count != 4 {
		t.Errorf("count %d, want the 4 queued kills", ev.Count)
	}
}

// Kill returns at once while the worker is stuck in an API call.
func TestKillNeverBlocks(t *testing.T) {
	h := newHarness(t, Options{QueueSize: 8})
	h.run()
	stuck, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	h.client.PrependReactor("create", "events", func(k8stesting.Action) (bool, runtime.Object, error) {
		once.Do(func() { close(stuck); <-release })
		return false, nil, nil
	})
	h.p.Kill(kill("a-0", 1))
	select {
	case <-stuck:
	case <-time.After(10 * time.Second):
		close(release)
		t.Fatal("the create never reached the fake clientset")
	}
	start := time.Now()
	for i := range 1000 {
		h.p.Kill(kill("b-0", uint32(i)))
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("1000 Kill calls took %v with the worker stuck", d)
	}
	if s := h.p.Stats(); s.Dropped != 1000-8 {
		t.Errorf("stats %+v, want %d dropped", s, 1000-8)
	}
	close(release)
	h.flush()
	if n := len(h.events("shop")); n != 2 {
		t.Errorf("%d Events, want 2", n)
	}
}

func TestSkipped(t *testing.T) {
	h := newHarness(t, Options{})
	h.run()
	k := kill("", 1)
	h.p.Kill(k)
	k = kill("a-0", 1)
	k.Namespace = ""
	h.p.Kill(k)
	h.flush()
	if s := h.p.Stats(); s.Skipped != 2 || s.Queued != 0 {
		t.Errorf("stats %+v, want 2 skipped", s)
	}
	if len(h.client.Actions()) != 0 {
		t.Errorf("API calls %v, want none", h.client.Actions())
	}
}

// Close writes the pending counts at once, whatever their window, and
// ends Run; later calls are refused.
func TestClose(t *testing.T) {
	h := newHarness(t, Options{})
	h.run()
	for i := range 3 {
		h.p.Kill(kill("a-0", uint32(i+1)))
	}
	h.p.Close()
	select {
	case <-h.p.done:
	default:
		t.Fatal("Close returned before Run")
	}
	if ev := only(t, h.events("shop")); ev.Count != 3 {
		t.Errorf("count %d after Close, want 3", ev.Count)
	}
	h.p.Kill(kill("a-0", 9))
	if s := h.p.Stats(); s.Dropped != 1 {
		t.Errorf("stats %+v: want the Kill after Close dropped", s)
	}
	if err := h.p.Flush(context.Background()); !errors.Is(err, ErrClosed) {
		t.Errorf("Flush after Close: %v, want ErrClosed", err)
	}
	if err := h.p.Run(context.Background()); !errors.Is(err, ErrClosed) {
		t.Errorf("Run after Close: %v, want ErrClosed", err)
	}
	h.p.Close() // again: nothing
}

func TestRunContext(t *testing.T) {
	h := newHarness(t, Options{})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- h.p.Run(ctx) }()
	h.p.Kill(kill("a-0", 1))
	h.p.Kill(kill("a-0", 2))
	h.flush()
	if err := h.p.Run(ctx); err == nil || errors.Is(err, ErrClosed) {
		t.Errorf("second Run: %v, want an error", err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run: %v", err)
	}
	if ev := only(t, h.events("shop")); ev.Count != 2 {
		t.Errorf("count %d after the context's end, want 2", ev.Count)
	}
	h.p.Kill(kill("a-0", 3))
	if s := h.p.Stats(); s.Dropped != 1 {
		t.Errorf("stats %+v: want a Kill after Run's end dropped", s)
	}
	if err := h.p.Flush(context.Background()); !errors.Is(err, ErrClosed) {
		t.Errorf("Flush after Run's end: %v, want ErrClosed", err)
	}
	h.p.Close() // returns: Run is over
}

// Close without Run returns at once; the queued kills are lost.
func TestCloseWithoutRun(t *testing.T) {
	h := newHarness(t, Options{})
	h.p.Kill(kill("a-0", 1))
	h.p.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if err := h.p.Flush(ctx); !errors.Is(err, ErrClosed) {
		t.Errorf("Flush: %v, want ErrClosed", err)
	}
}

func TestBounded(t *testing.T) {
	h := newHarness(t, Options{MaxPods: 3, Forget: 5 * time.Minute})
	h.run()
	// Each kill handled before the clock moves: eviction goes by when the
	// worker saw a pod's last kill.
	step := func(pod string, pid uint32) {
		h.p.Kill(kill(pod, pid))
		h.flush()
		h.clock.Add(time.Second)
	}
	step("p0", 0)
	step("p1", 1)
	step("p2", 2)
	step("p0", 10) // pending: p0 is now the most recent
	step("p3", 11) // evicts p1, the least recently killed
	step("p4", 12) // evicts p2
	if s := h.p.Stats(); s.Tracked != 3 {
		t.Errorf("tracked %d, want the cap 3", s.Tracked)
	}
	h.p.Kill(kill("p5", 13)) // evicts p0, writing its pending kill first
	h.flush()
	counts := map[string]int32{}
	for _, ev := range h.events("shop") {
		counts[ev.InvolvedObject.Name] = ev.Count
	}
	if counts["p0"] != 2 {
		t.Errorf("counts %v: want p0's pending kill written when it was forgotten", counts)
	}

	h.clock.Add(5*time.Minute + time.Second)
	h.flush()
	if s := h.p.Stats(); s.Tracked != 0 {
		t.Errorf("tracked %d after 5 idle minutes, want 0", s.Tracked)
	}
	h.p.Kill(kill("p5", 14))
	h.flush()
	n := 0
	for _, ev := range h.events("shop") {
		if ev.InvolvedObject.Name == "p5" {
			n++
		}
	}
	if n != 2 {
		t.Errorf("%d Events on p5, want 2: a kill after it was forgotten starts a new one", n)
	}
}

func TestMessage(t *testing.T) {
	base := KillInfo{VictimComm: "web", VictimPID: 4242, VictimRSS: 67_003_596, TriggerComm: "web", TriggerPID: 4242,
		Limit: "container", LimitBytes: ptr(int64(64 << 20))}
	for _, tc := range []struct {
		name string
		edit func(*KillInfo)
		want string
	}{
		{"container", func(*KillInfo) {},
			"oomtrace: process web[4242] (rss 63.9 MiB) killed: container memory limit 64.0 MiB hit; allocation by web[4242]"},
		{"named container", func(k *KillInfo) { k.Container = "app" },
			"oomtrace: process web[4242] of container app (rss 63.9 MiB) killed: container memory limit 64.0 MiB hit; allocation by web[4242]"},
		{"pod", func(k *KillInfo) {
			k.Limit, k.LimitBytes, k.TriggerComm, k.TriggerPID = "pod", ptr(int64(3<<30)), "java", 77
		},
			"oomtrace: process web[4242] (rss 63.9 MiB) killed: pod memory limit 3.0 GiB hit; allocation by java[77]"},
		{"node", func(k *KillInfo) { k.Limit, k.LimitBytes = "node", ptr(int64(16<<30-300<<20)) },
			"oomtrace: process web[4242] (rss 63.9 MiB) killed: node memory 15.7 GiB exhausted; allocation by web[4242]"},
		{"node size unknown", func(k *KillInfo) { k.Limit, k.LimitBytes = "node", nil },
			"oomtrace: process web[4242] (rss 63.9 MiB) killed: node out of memory; allocation by web[4242]"},
		{"size unknown", func(k *KillInfo) { k.LimitBytes = nil },
			"oomtrace: process web[4242] (rss 63.9 MiB) killed: container memory limit (size unknown) hit; allocation by web[4242]"},
		{"scope unknown", func(k *KillInfo) { k.Limit = "" },
			"oomtrace: process web[4242] (rss 63.9 MiB) killed: memory limit 64.0 MiB hit (whose unknown); allocation by web[4242]"},
		{"nothing known", func(k *KillInfo) { *k = KillInfo{VictimPID: 9} },
			"oomtrace: process ?[9] killed: memory limit unknown; allocation by an unknown process"},
		{"odd comm", func(k *KillInfo) { k.VictimComm, k.VictimRSS, k.LimitBytes = "a\x01b\xff", 512, ptr(int64(1536)) },
			`oomtrace: process "a\x01b\xff"[4242] (rss 512 B) killed: container memory limit 1.5 KiB hit; allocation by web[4242]`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			k := base
			tc.edit(&k)
			if got := message(&k); got != tc.want {
				t.Errorf("\n got %q\nwant %q", got, tc.want)
			}
		})
	}
	long := base
	long.Container = strings.Repeat("x", 2000)
	if got := message(&long); len(got) > maxMessage || !strings.HasSuffix(got, "...") {
		t.Errorf("%d bytes, want at most %d ending in ...", len(got), maxMessage)
	}
}

func TestEventName(t *testing.T) {
	p := New(nil, Options{Now: func() time.Time { return t0 }})
	a, b := p.eventName("web-0"), p.eventName("web-0")
	if a == b || !strings.HasPrefix(a, "web-0.") {
		t.Errorf("names %q %q: want distinct web-0.<hex>", a, b)
	}
	long := p.eventName(strings.Repeat("a", 235) + "-" + strings.Repeat("b", 20))
	if len(long) > 253 || strings.Contains(long, "-.") {
		t.Errorf("name %q (%d bytes): want a DNS subdomain of at most 253", long, len(long))
	}
}

func TestInCluster(t *testing.T) {
	t.Setenv("KUBERNETES_SERVICE_HOST", "")
	t.Setenv("KUBERNETES_SERVICE_PORT", "")
	_, err := InCluster()
	if err == nil || !strings.Contains(err.Error(), "not running in a Kubernetes pod") {
		t.Errorf("outside a cluster: %v, want a clear error", err)
	}
	t.Setenv("KUBERNETES_SERVICE_HOST", "10.96.0.1")
	t.Setenv("KUBERNETES_SERVICE_PORT", "443")
	if _, err := InCluster(); err == nil {
		t.Skip("this machine has a service account token")
	} else if !strings.Contains(err.Error(), "without a service account token") {
		t.Errorf("no token: %v, want it said", err)
	}
}
