package critest

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/oomtrace/oomtrace/internal/workload"
)

// The labels the kubelet puts on sandboxes and containers (and the tracer
// reads back to name a pod).
const (
	LabelPodName       = "io.kubernetes.pod.name"
	LabelPodNamespace  = "io.kubernetes.pod.namespace"
	LabelPodUID        = "io.kubernetes.pod.uid"
	LabelContainerName = "io.kubernetes.container.name"
)

// ExitOOMKilled is a container's exit code after SIGKILL, which is how the
// OOM killer ends it; the CRI reason is then ReasonOOMKilled.
const (
	ExitOOMKilled   = 137
	ReasonOOMKilled = "OOMKilled"
)

// PodOpts says which pod to run. Everything has a default.
type PodOpts struct {
	Name      string // default: from the test's name
	Namespace string // default: "default"
	UID       string // default: a random UUID, as the API server assigns
	QoS       string // Guaranteed, Burstable or BestEffort: the cgroup parent; default Burstable
}

// Pod is a running pod sandbox.
type Pod struct {
	ID     string // the sandbox id
	UID    string
	QoS    string
	Config *runtimeapi.PodSandboxConfig

	env     *Env
	mu      sync.Mutex
	removed bool
}

// RunPod runs a pod sandbox the way the kubelet does: host network (no CNI
// here), cgroup parent /kubepods/<qos>/pod<uid> (cgroupfs driver), the
// io.kubernetes.pod.* labels, a log directory. The pod, its containers and
// its cgroups are removed when the test ends unless Remove did it already.
func (e *Env) RunPod(tb testing.TB, o PodOpts) *Pod {
	tb.Helper()
	if o.Name == "" {
		o.Name = dnsName(tb.Name())
	}
	if o.Namespace == "" {
		o.Namespace = "default"
	}
	if o.UID == "" {
		o.UID = newUID()
	}
	if !uidRE.MatchString(o.UID) {
		// It becomes a cgroup directory name and a journal field.
		tb.Fatalf("pod UID %q: want letters, digits and dashes", o.UID)
	}
	switch o.QoS {
	case "":
		o.QoS = Burstable
	case Guaranteed, Burstable, BestEffort:
	default:
		tb.Fatalf("pod QoS %q: want %q, %q or %q", o.QoS, Guaranteed, Burstable, BestEffort)
	}
	logDir := filepath.Join(e.Dir, "pods", o.Namespace+"_"+o.Name+"_"+o.UID)
	if err := os.MkdirAll(logDir, 0o755); err != nil {
		tb.Fatal(err)
	}
	cfg := &runtimeapi.PodSandboxConfig{
		Metadata: &runtimeapi.PodSandboxMetadata{Name: o.Name, Namespace: o.Namespace, Uid: o.UID},
		// No Hostname: with the host's network the pod has the host's UTS
		// namespace too, and runc refuses to set a hostname there (the
		// kubelet leaves it empty for hostNetwork pods as well).
		LogDirectory: logDir,
		Labels:       map[string]string{LabelPodName: o.Name, LabelPodNamespace: o.Namespace, LabelPodUID: o.UID},
		Annotations: map[string]string{
			"kubernetes.io/config.source": "api",
			"kubernetes.io/config.seen":   time.Now().UTC().Format(time.RFC3339Nano),
		},
		Linux: &runtimeapi.LinuxPodSandboxConfig{
			CgroupParent:    podCgroupParent(o.QoS, o.UID),
			SecurityContext: &runtimeapi.LinuxSandboxSecurityContext{NamespaceOptions: namespaces()},
		},
	}
	p := &Pod{UID: o.UID, QoS: o.QoS, Config: cfg, env: e}

	// Under e.mu: a pod's sandbox creates the kubepods parents it needs,
	// and another test's cleanup must not remove one of them in between.
	e.mu.Lock()
	e.livePods++ // the cleanup below undoes it, whatever happens here
	parents := missingParents(o.QoS)
	lines := []string{"pod " + o.UID + " " + o.QoS}
	for _, d := range parents {
		lines = append(lines, "parent "+d)
	}
	err := appendJournal(e.d.journal(), lines...) // before: a crash in between is swept
	if err == nil {
		e.newParents = append(e.newParents, parents...)
		var resp *runtimeapi.RunPodSandboxResponse
		resp, err = e.rt.RunPodSandbox(e.ctx(tb), &runtimeapi.RunPodSandboxRequest{Config: cfg})
		if resp != nil {
			p.ID = resp.PodSandboxId
			err = errors.Join(err, appendJournal(e.d.journal(), "sandbox "+p.ID))
		}
	}
	e.mu.Unlock()
	// Registered even when RunPodSandbox failed: it may have left cgroups.
	tb.Cleanup(func() {
		if err := p.remove(); err != nil {
			tb.Errorf("removing pod %s: %v", o.Name, err)
		}
	})
	if err != nil {
		tb.Fatalf("RunPodSandbox %s: %v; containerd's log ends:\n%s", o.Name, err, e.d.logTail())
	}
	return p
}

// namespaces are the pod's and every container's: the host's network
// (no CNI), a pid namespace per container and an IPC namespace per pod, as
// the kubelet's defaults with hostNetwork: true.
func namespaces() *runtimeapi.NamespaceOption {
	return &runtimeapi.NamespaceOption{
		Network: runtimeapi.NamespaceMode_NODE,
		Pid:     runtimeapi.NamespaceMode_CONTAINER,
		Ipc:     runtimeapi.NamespaceMode_POD,
	}
}

// Remove stops and removes the pod and its containers now (StopPodSandbox,
// RemovePodSandbox), and its cgroups: for tests of what happens after a pod
// is gone. The test's cleanup then has nothing left to do.
func (p *Pod) Remove(tb testing.TB) {
	tb.Helper()
	if err := p.remove(); err != nil {
		tb.Fatalf("removing pod %s: %v", p.Config.Metadata.Name, err)
	}
}

func (p *Pod) remove() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.removed {
		return nil
	}
	p.removed = true
	e := p.env
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var err error
	if p.ID != "" {
		err = e.removeSandbox(ctx, p.ID)
	}
	if err == nil {
		// Only once the runtime is done with it: the pod's containers'
		// cgroups are gone then, and the pod's own is empty.
		err = removePodCgroups(p.UID, p.QoS)
	}
	e.mu.Lock()
	e.livePods--
	if e.livePods == 0 {
		removeParents(e.newParents)
		e.newParents = nil
	}
	e.mu.Unlock()
	return err
}

// removeSandbox stops and removes a sandbox. Stopping kills its containers
// at once (SIGKILL, no grace period); removing deletes them and their
// cgroups. A sandbox already gone is no error.
func (e *Env) removeSandbox(ctx context.Context, id string) error {
	_, err := e.rt.StopPodSandbox(ctx, &runtimeapi.StopPodSandboxRequest{PodSandboxId: id})
	if err != nil && status.Code(err) != codes.NotFound {
		return fmt.Errorf("StopPodSandbox %.12s: %w", id, err)
	}
	_, err = e.rt.RemovePodSandbox(ctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: id})
	if err != nil && status.Code(err) != codes.NotFound {
		return fmt.Errorf("RemovePodSandbox %.12s: %w", id, err)
	}
	return nil
}

// ContainerOpts says which container to run in a pod.
type ContainerOpts struct {
	Name     string            // default: "hog"
	Cmd      []string          // the command (the CRI's, a pod spec's command); default: the image's, /bin/sh
	MemoryMB int               // memory limit, and memory+swap the same (no swap); 0 means 64: never unlimited, a hog must not OOM the host
	Labels   map[string]string // besides the kubelet's
}

// StartContainer creates a container of the hog image in the pod and starts
// it. Its labels are the kubelet's (io.kubernetes.container.name and the
// pod's io.kubernetes.pod.*), its namespaces the pod's. It is removed with
// the pod. It returns the container id.
func (p *Pod) StartContainer(tb testing.TB, o ContainerOpts) string {
	tb.Helper()
	id := p.CreateContainer(tb, o)
	p.env.StartCreated(tb, id)
	return id
}

// CreateContainer creates a container as StartContainer does, without
// starting it: for a test that must watch its cgroup from the moment it
// exists (see WatchOOMKills).
func (p *Pod) CreateContainer(tb testing.TB, o ContainerOpts) string {
	tb.Helper()
	e := p.env
	if o.Name == "" {
		o.Name = "hog"
	}
	mb := o.MemoryMB
	if mb == 0 {
		mb = 64
	}
	if mb < 0 {
		tb.Fatalf("container %s: MemoryMB %d", o.Name, mb)
	}
	md := p.Config.Metadata
	labels := map[string]string{
		LabelContainerName: o.Name,
		LabelPodName:       md.Name,
		LabelPodNamespace:  md.Namespace,
		LabelPodUID:        md.Uid,
	}
	maps.Copy(labels, o.Labels)
	if err := os.MkdirAll(filepath.Join(p.Config.LogDirectory, o.Name), 0o755); err != nil {
		tb.Fatal(err)
	}
	limit := int64(mb) << 20
	cfg := &runtimeapi.ContainerConfig{
		Metadata:    &runtimeapi.ContainerMetadata{Name: o.Name},
		Image:       &runtimeapi.ImageSpec{Image: e.HogImage(tb)},
		Command:     o.Cmd,
		Labels:      labels,
		Annotations: map[string]string{"io.kubernetes.container.restartCount": "0"},
		LogPath:     filepath.Join(o.Name, "0.log"), // relative to the pod's log directory
		Linux: &runtimeapi.LinuxContainerConfig{
			Resources: &runtimeapi.LinuxContainerResources{
				MemoryLimitInBytes:     limit,
				MemorySwapLimitInBytes: limit,
			},
			SecurityContext: &runtimeapi.LinuxContainerSecurityContext{NamespaceOptions: namespaces()},
		},
	}
	resp, err := e.rt.CreateContainer(e.ctx(tb), &runtimeapi.CreateContainerRequest{
		PodSandboxId: p.ID, Config: cfg, SandboxConfig: p.Config,
	})
	if err != nil {
		tb.Fatalf("CreateContainer %s: %v; containerd's log ends:\n%s", o.Name, err, e.d.logTail())
	}
	return resp.ContainerId
}

// StartCreated starts a container CreateContainer made.
func (e *Env) StartCreated(tb testing.TB, id string) {
	tb.Helper()
	if _, err := e.rt.StartContainer(e.ctx(tb), &runtimeapi.StartContainerRequest{ContainerId: id}); err != nil {
		tb.Fatalf("StartContainer %.12s: %v; containerd's log ends:\n%s", id, err, e.d.logTail())
	}
}

// Status is the container's CRI status.
func (e *Env) Status(tb testing.TB, id string) *runtimeapi.ContainerStatus {
	tb.Helper()
	// Not e.ctx: WaitExited calls this a hundred times a second, and each
	// e.ctx adds a cleanup.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	resp, err := e.rt.ContainerStatus(ctx, &runtimeapi.ContainerStatusRequest{ContainerId: id})
	if err != nil {
		tb.Fatalf("ContainerStatus %.12s: %v", id, err)
	}
	return resp.Status
}

// WaitExited waits until the container has exited, polling its status, and
// returns its exit code and the runtime's reason ("OOMKilled" when the OOM
// killer ended its main process, "Error" for another non-zero exit).
func (e *Env) WaitExited(tb testing.TB, id string, timeout time.Duration) (code int32, reason string) {
	tb.Helper()
	deadline := time.Now().Add(timeout)
	for {
		st := e.Status(tb, id)
		if st.State == runtimeapi.ContainerState_CONTAINER_EXITED {
			return st.ExitCode, st.Reason
		}
		if time.Now().After(deadline) {
			tb.Fatalf("container %.12s not exited within %v: %v; its log:\n%s", id, timeout, st.State, containerLog(st))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// containerLog is the end of the container's output (CRI log format).
func containerLog(st *runtimeapi.ContainerStatus) string {
	data, err := os.ReadFile(st.LogPath)
	if err != nil {
		return err.Error()
	}
	return tail(data)
}

// CgroupDir is the container's memory cgroup directory on this host: under
// the memory hierarchy, /kubepods/<qos>/pod<uid>/<container id>, as runc's
// cgroupfs driver names it (v1: /sys/fs/cgroup/memory/kubepods/...). qos ""
// is Burstable. The runtime removes the directory when the container is
// deleted, which the CRI plugin does as soon as it has exited.
func (e *Env) CgroupDir(tb testing.TB, podUID, qos, containerID string) string {
	tb.Helper()
	if qos == "" {
		qos = Burstable
	}
	h, err := workload.FindHierarchy()
	if err != nil {
		tb.Fatalf("memory cgroup hierarchy: %v", err)
	}
	return h.Dir(filepath.Join(podCgroupParent(qos, podUID), containerID))
}

// CgroupDir is CgroupDir for a container of this pod.
func (p *Pod) CgroupDir(tb testing.TB, containerID string) string {
	tb.Helper()
	return p.env.CgroupDir(tb, p.UID, p.QoS, containerID)
}

// OOMKills reads the kernel's count of OOM kills in the memory cgroup dir:
// memory.oom_control oom_kill on v1, memory.events oom_kill on v2.
func (e *Env) OOMKills(tb testing.TB, dir string) uint64 {
	tb.Helper()
	n, err := cgroupAt(tb, dir).OOMKills()
	if err != nil {
		tb.Fatalf("oom_kill of %s: %v", dir, err)
	}
	return n
}

func cgroupAt(tb testing.TB, dir string) *workload.Cgroup {
	tb.Helper()
	h, err := workload.FindHierarchy()
	if err != nil {
		tb.Fatalf("memory cgroup hierarchy: %v", err)
	}
	return &workload.Cgroup{Path: dir, V2: h.V2, Files: h.Files()}
}

var (
	uidRE     = regexp.MustCompile(`^[A-Za-z0-9-]+$`)
	nonDNSRE  = regexp.MustCompile(`[^a-z0-9-]+`)
	dashesRE  = regexp.MustCompile(`-+`)
	maxDNSLen = 63
)

// dnsName makes a test's name a valid pod name (a DNS label).
func dnsName(s string) string {
	s = dashesRE.ReplaceAllString(nonDNSRE.ReplaceAllString(strings.ToLower(s), "-"), "-")
	if len(s) > maxDNSLen {
		s = s[:maxDNSLen]
	}
	if s = strings.Trim(s, "-"); s == "" {
		return "pod"
	}
	return s
}

// newUID is a random (version 4) UUID, as the API server gives pods.
func newUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}

// OOMWatch follows the oom_kill count of a container's memory cgroup for as
// long as the cgroup exists. It is needed for a container that the OOM
// killer ends: the CRI plugin deletes the container's task as soon as it
// exits, and runc removes the cgroup with it, about 30 ms after the kill
// (measured), long before a test could read the count after WaitExited.
type OOMWatch struct {
	dir  string
	stop chan struct{}
	done chan struct{}

	mu    sync.Mutex
	kills uint64
	seen  bool  // the cgroup existed at some read
	err   error // a read failing other than by the cgroup's absence
}

// WatchOOMKills starts reading dir's oom_kill count every millisecond,
// waiting for the directory to appear first: call it between
// CreateContainer and StartCreated, since the cgroup only exists once the
// container starts and may be gone again by the time StartCreated returns.
// The watch ends at Kills, once the cgroup is gone, or at the test's end.
func (e *Env) WatchOOMKills(tb testing.TB, dir string) *OOMWatch {
	tb.Helper()
	cg := cgroupAt(tb, dir)
	w := &OOMWatch{dir: dir, stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(w.done)
		tick := time.NewTicker(time.Millisecond)
		defer tick.Stop()
		for {
			n, err := cg.OOMKills()
			w.mu.Lock()
			gone := false
			switch {
			case err == nil:
				w.kills, w.seen = n, true
			case errors.Is(err, os.ErrNotExist) || errors.Is(err, syscall.ENODEV):
				gone = w.seen // removed (ENODEV: while we read it)
			default:
				w.err = err
			}
			w.mu.Unlock()
			if gone || w.err != nil {
				return
			}
			select {
			case <-w.stop:
				return
			case <-tick.C:
			}
		}
	}()
	tb.Cleanup(w.end)
	return w
}

func (w *OOMWatch) end() {
	select {
	case <-w.stop:
	default:
		close(w.stop)
	}
	<-w.done
}

// Kills ends the watch and returns the last count read while the cgroup
// existed: for an exited container, its count at the end. It fails the
// test when the cgroup was never seen.
func (w *OOMWatch) Kills(tb testing.TB) uint64 {
	tb.Helper()
	w.end()
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err != nil {
		tb.Fatalf("reading oom_kill of %s: %v", w.dir, w.err)
	}
	if !w.seen {
		tb.Fatalf("cgroup %s never appeared", w.dir)
	}
	return w.kills
}

// Now is the count read last, the watch going on: for waiting until the
// kernel counted a kill (0 before the cgroup appears).
func (w *OOMWatch) Now() uint64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.kills
}
