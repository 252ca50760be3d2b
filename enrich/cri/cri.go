// Package cri names the Kubernetes pod, namespace and container of a
// container id, over the Container Runtime Interface: the gRPC API the
// kubelet itself drives containerd and CRI-O with. A cache filled at start
// (ListPodSandbox, ListContainers) is kept current by the runtime's
// container events where it has them (GetContainerEvents: containerd 1.7+,
// CRI-O), else by a status query and a re-list on a cache miss, at most one
// list a second. Removed containers stay findable for a while, as an
// OOM-killed pod is often deleted right after its kill.
package cri

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/oomtrace/oomtrace/enrich/retain"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// The labels the kubelet puts on every pod sandbox and container.
const (
	LabelPodName       = "io.kubernetes.pod.name"
	LabelPodNamespace  = "io.kubernetes.pod.namespace"
	LabelPodUID        = "io.kubernetes.pod.uid"
	LabelContainerName = "io.kubernetes.container.name"
)

// Errors a Lookup wraps.
var (
	ErrNotFound    = errors.New("container not known to the runtime")
	ErrUnavailable = errors.New("container runtime unavailable")
)

var errNoCRI = errors.New("no CRI runtime service")

// Info is what the runtime says of a container and its pod.
type Info struct {
	ID        string // the container's id
	Name      string // the Kubernetes container name
	Image     string // as the pod spec names it
	ImageRef  string // the image's digest or id, as the runtime resolved it
	PodID     string // the sandbox id
	Pod       string
	Namespace string
	PodUID    string
	// Labels are the container's labels (io.kubernetes.*, and the
	// runtime's own); callers bound what they print.
	Labels  map[string]string
	Runtime string // the runtime's name, from Version: containerd, cri-o
}

// DefaultEndpoints are tried in order when no endpoint is named.
var DefaultEndpoints = []string{
	"unix:///run/containerd/containerd.sock",
	"unix:///var/run/crio/crio.sock",
}

// Discover returns the first default endpoint whose socket exists, "" if none.
func Discover() string {
	for _, e := range DefaultEndpoints {
		if st, err := os.Stat(strings.TrimPrefix(e, "unix://")); err == nil && st.Mode()&os.ModeSocket != 0 {
			return e
		}
	}
	return ""
}

// Options configure a Cache; zero values take the defaults.
type Options struct {
	Endpoint string // unix:///path/to.sock
	// MaxWait bounds a Lookup of a container the cache does not hold
	// (default 150ms): a runtime that is slow or hung never holds an event
	// longer.
	MaxWait time.Duration
	// Retention keeps removed containers findable this long (default
	// 10m), at most MaxRetained of them (default 4096).
	Retention   time.Duration
	MaxRetained int
	// RelistEvery is the least time between two lists on cache misses
	// (default 1s).
	RelistEvery time.Duration
	// OnError hears of errors in the background; Run carries on after each.
	OnError func(error)
}

// Cache maps container ids to their Info. Safe for concurrent use.
type Cache struct {
	opts  Options
	store *retain.Store[Info]

	mu      sync.Mutex
	client  runtimeapi.RuntimeServiceClient // nil until connected
	runtime string
	pods    map[string]*runtimeapi.PodSandboxMetadata // sandbox id -> metadata, from the last list
	listed  time.Time                                 // when the last list began
	events  bool                                      // the runtime streams container events

	lookups, hits, misses, errs, lists atomic.Uint64
}

// NewCache makes a cache; Run connects and fills it.
func NewCache(opts Options) *Cache {
	if opts.MaxWait <= 0 {
		opts.MaxWait = 150 * time.Millisecond
	}
	if opts.Retention <= 0 {
		opts.Retention = 10 * time.Minute
	}
	if opts.MaxRetained <= 0 {
		opts.MaxRetained = 4096
	}
	if opts.RelistEvery <= 0 {
		opts.RelistEvery = time.Second
	}
	return &Cache{
		opts:  opts,
		store: retain.New(opts.Retention, opts.MaxRetained, func(i Info) string { return i.ID }, clone),
		pods:  map[string]*runtimeapi.PodSandboxMetadata{},
	}
}

func clone(i Info) Info {
	i.Labels = maps.Clone(i.Labels)
	return i
}

// Endpoint is the runtime's address.
func (c *Cache) Endpoint() string { return c.opts.Endpoint }

// Stats are counters for metrics and benchmarks.
type Stats struct {
	Lookups, Hits, Misses, Errors, Lists uint64
	Cached, Retained                     int
	Events                               bool // the runtime streams container events
	Runtime                              string
}

func (c *Cache) Stats() Stats {
	live, gone := c.store.Counts()
	c.mu.Lock()
	defer c.mu.Unlock()
	return Stats{Lookups: c.lookups.Load(), Hits: c.hits.Load(), Misses: c.misses.Load(), Errors: c.errs.Load(),
		Lists: c.lists.Load(), Cached: live, Retained: gone, Events: c.events, Runtime: c.runtime}
}

// Run connects to the runtime, lists what it has, and follows its events
// until ctx is done, reconnecting (1 s doubling to a minute) when the
// runtime goes away. It returns early only for an endpoint it cannot use.
func (c *Cache) Run(ctx context.Context) error {
	if !strings.HasPrefix(c.opts.Endpoint, "unix://") {
		return fmt.Errorf("CRI endpoint %q: want unix:///path/to.sock", c.opts.Endpoint)
	}
	conn, err := grpc.NewClient(c.opts.Endpoint, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return fmt.Errorf("CRI endpoint %q: %w", c.opts.Endpoint, err)
	}
	defer conn.Close()
	client := runtimeapi.NewRuntimeServiceClient(conn)
	backoff := time.Second
	for ctx.Err() == nil {
		err := c.session(ctx, client)
		if ctx.Err() != nil {
			return nil
		}
		if errors.Is(err, errNoCRI) {
			return err // a runtime there, without the CRI: retrying cannot help
		}
		c.report(err)
		select {
		case <-ctx.Done():
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, time.Minute)
	}
	return nil
}

// session is one connected stretch: Version, a list, then the event stream
// (or, where the runtime has none, nothing more: misses re-list).
func (c *Cache) session(ctx context.Context, client runtimeapi.RuntimeServiceClient) error {
	vctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	v, err := client.Version(vctx, &runtimeapi.VersionRequest{})
	cancel()
	if status.Code(err) == codes.Unimplemented {
		// Docker's own containerd, for one, runs with its cri plugin off.
		return fmt.Errorf("%w at %s (a containerd with its cri plugin disabled?): %w", errNoCRI, c.opts.Endpoint, err)
	}
	if err != nil {
		return fmt.Errorf("%w: %s: Version: %w", ErrUnavailable, c.opts.Endpoint, err)
	}
	c.mu.Lock()
	c.client, c.runtime = client, v.GetRuntimeName()
	c.mu.Unlock()
	if err := c.relist(ctx); err != nil {
		return err
	}
	stream, err := client.GetContainerEvents(ctx, &runtimeapi.GetEventsRequest{})
	if err == nil {
		var ev *runtimeapi.ContainerEventResponse
		if ev, err = stream.Recv(); err == nil {
			c.setEvents(true)
			for ; err == nil; ev, err = stream.Recv() {
				c.apply(ev)
			}
		}
	}
	c.setEvents(false)
	if status.Code(err) == codes.Unimplemented {
		// containerd 1.6: no events. Lookups that miss re-list instead;
		// wait here until the connection ends or ctx does.
		<-ctx.Done()
		return nil
	}
	if ctx.Err() != nil {
		return nil
	}
	return fmt.Errorf("%w: %s: container events: %w", ErrUnavailable, c.opts.Endpoint, err)
}

func (c *Cache) setEvents(on bool) {
	c.mu.Lock()
	c.events = on
	c.mu.Unlock()
}

// apply takes one container event: its statuses carry the labels and, with
// the sandbox's, the pod's names.
func (c *Cache) apply(ev *runtimeapi.ContainerEventResponse) {
	if ev.GetContainerEventType() == runtimeapi.ContainerEventType_CONTAINER_DELETED_EVENT {
		c.store.Remove(ev.GetContainerId(), time.Now())
		return
	}
	var pod *runtimeapi.PodSandboxMetadata
	if s := ev.GetPodSandboxStatus(); s != nil {
		pod = s.GetMetadata()
		c.mu.Lock()
		c.pods[s.GetId()] = pod
		c.mu.Unlock()
	}
	for _, st := range ev.GetContainersStatuses() {
		if st.GetId() == ev.GetContainerId() {
			info := fromStatus(st, c.runtimeName())
			fillPod(&info, pod)
			info.PodID = ev.GetPodSandboxStatus().GetId()
			c.store.Put(info)
		}
	}
}

func (c *Cache) runtimeName() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.runtime
}

// relist lists sandboxes and containers and syncs the cache with them.
func (c *Cache) relist(ctx context.Context) error {
	c.mu.Lock()
	client, runtime := c.client, c.runtime
	c.listed = time.Now()
	c.mu.Unlock()
	if client == nil {
		return fmt.Errorf("%w: %s: not connected", ErrUnavailable, c.opts.Endpoint)
	}
	c.lists.Add(1)
	lctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	before := c.store.LiveIDs()
	sandboxes, err := client.ListPodSandbox(lctx, &runtimeapi.ListPodSandboxRequest{})
	if err != nil {
		return fmt.Errorf("%w: %s: ListPodSandbox: %w", ErrUnavailable, c.opts.Endpoint, err)
	}
	containers, err := client.ListContainers(lctx, &runtimeapi.ListContainersRequest{})
	if err != nil {
		return fmt.Errorf("%w: %s: ListContainers: %w", ErrUnavailable, c.opts.Endpoint, err)
	}
	pods := map[string]*runtimeapi.PodSandboxMetadata{}
	for _, s := range sandboxes.GetItems() {
		pods[s.GetId()] = s.GetMetadata()
	}
	c.mu.Lock()
	maps.Copy(c.pods, pods)
	for id := range c.pods {
		if _, ok := pods[id]; !ok {
			delete(c.pods, id) // its containers keep their names in the store
		}
	}
	c.mu.Unlock()
	listed := map[string]Info{}
	for _, ct := range containers.GetContainers() {
		info := Info{
			ID: ct.GetId(), Name: ct.GetMetadata().GetName(), Image: ct.GetImage().GetImage(), ImageRef: ct.GetImageRef(),
			PodID: ct.GetPodSandboxId(), Labels: maps.Clone(ct.GetLabels()), Runtime: runtime,
		}
		fillFromLabels(&info)
		fillPod(&info, pods[ct.GetPodSandboxId()])
		listed[info.ID] = info
	}
	c.store.Sync(before, listed, time.Now())
	return nil
}

func fromStatus(st *runtimeapi.ContainerStatus, runtime string) Info {
	info := Info{
		ID: st.GetId(), Name: st.GetMetadata().GetName(), Image: st.GetImage().GetImage(), ImageRef: st.GetImageRef(),
		Labels: maps.Clone(st.GetLabels()), Runtime: runtime,
	}
	fillFromLabels(&info)
	return info
}

// fillFromLabels takes the pod's names from the kubelet's labels, for a
// container whose sandbox is not (or no longer) listed.
func fillFromLabels(info *Info) {
	l := info.Labels
	info.Pod, info.Namespace, info.PodUID = l[LabelPodName], l[LabelPodNamespace], l[LabelPodUID]
	if info.Name == "" {
		info.Name = l[LabelContainerName]
	}
}

// fillPod takes the pod's names from its sandbox, which the kubelet names
// authoritatively.
func fillPod(info *Info, pod *runtimeapi.PodSandboxMetadata) {
	if pod == nil {
		return
	}
	if pod.GetName() != "" {
		info.Pod = pod.GetName()
	}
	if pod.GetNamespace() != "" {
		info.Namespace = pod.GetNamespace()
	}
	if pod.GetUid() != "" {
		info.PodUID = pod.GetUid()
	}
}

// Lookup returns the container with this id. When the cache does not hold
// it, it asks the runtime (ContainerStatus) and, at most once per
// RelistEvery, re-lists, for at most MaxWait in all. Errors wrap
// ErrNotFound or ErrUnavailable.
func (c *Cache) Lookup(ctx context.Context, id string) (Info, error) {
	c.lookups.Add(1)
	info, err := c.lookup(ctx, id)
	if err != nil {
		c.errs.Add(1)
	}
	return info, err
}

func (c *Cache) lookup(ctx context.Context, id string) (Info, error) {
	if info, ok := c.store.Get(id, time.Now()); ok {
		c.hits.Add(1)
		return info, nil
	}
	c.misses.Add(1)
	c.mu.Lock()
	client, runtime := c.client, c.runtime
	relist := client != nil && time.Since(c.listed) >= c.opts.RelistEvery
	c.mu.Unlock()
	if client == nil {
		return Info{}, fmt.Errorf("%w: %s: not connected", ErrUnavailable, c.opts.Endpoint)
	}
	if relist {
		// In the background, on its own deadline: it refreshes the pod
		// names of every container for the next kills, whether or not
		// this lookup waits for it.
		go func() {
			if err := c.relist(context.Background()); err != nil {
				c.report(err)
			}
		}()
	}
	wctx, cancel := context.WithTimeout(ctx, c.opts.MaxWait)
	defer cancel()
	st, err := client.ContainerStatus(wctx, &runtimeapi.ContainerStatusRequest{ContainerId: id})
	switch {
	case err == nil && st.GetStatus() != nil:
		info := fromStatus(st.GetStatus(), runtime)
		c.mu.Lock()
		for podID, pod := range c.pods {
			if pod.GetUid() != "" && pod.GetUid() == info.PodUID {
				info.PodID = podID
				fillPod(&info, pod)
			}
		}
		c.mu.Unlock()
		c.store.Put(info)
		return c.storeOr(id, info), nil
	case status.Code(err) == codes.NotFound:
		// A list under way may still know it, removed just now.
		if info, ok := c.store.Get(id, time.Now()); ok {
			return info, nil
		}
		return Info{}, fmt.Errorf("%w: %.12s", ErrNotFound, id)
	case wctx.Err() != nil && ctx.Err() == nil:
		return Info{}, fmt.Errorf("%w: %s: no answer within %v", ErrUnavailable, c.opts.Endpoint, c.opts.MaxWait)
	default:
		return Info{}, fmt.Errorf("%w: %s: ContainerStatus: %w", ErrUnavailable, c.opts.Endpoint, err)
	}
}

// storeOr is what the store holds for id (a removal meanwhile keeps it
// there as removed), else info.
func (c *Cache) storeOr(id string, info Info) Info {
	if got, ok := c.store.Get(id, time.Now()); ok {
		return got
	}
	return info
}

func (c *Cache) report(err error) {
	if err != nil && c.opts.OnError != nil {
		c.opts.OnError(err)
	}
}

// PodAlive reports whether the runtime had a sandbox of the pod with this
// UID when it last said (its last list or event).
func (c *Cache) PodAlive(uid string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, pod := range c.pods {
		if pod.GetUid() == uid {
			return true
		}
	}
	return false
}
