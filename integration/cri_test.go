package integration

// Kubernetes on containerd: a real private containerd with its CRI plugin
// (internal/critest plays the kubelet), the daemon in-process naming each
// kill's namespace, pod and container over the CRI. Three kills: a
// container's main process; a child process the container forked (which
// Kubernetes' own OOMKilled never reports); and one whose pod the test
// removes at once. Each counted against the kernel. CRI-O is not packaged
// here; it is served by the same code, the CRI being one API.

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/oomtrace/oomtrace/daemon"
	"github.com/oomtrace/oomtrace/enrich/cri"
	"github.com/oomtrace/oomtrace/event"
	"github.com/oomtrace/oomtrace/internal/critest"
	"github.com/oomtrace/oomtrace/internal/oomtest"
)

// criKills are the daemon's oom_kill lines for container id.
func criKills(t *testing.T, out *lockedBuffer, id string) (lines []event.Kill, kills int) {
	t.Helper()
	out.lines(t, "oom_kill", func(b []byte) {
		var k event.Kill
		if err := json.Unmarshal(b, &k); err != nil {
			t.Fatal(err)
		}
		if k.Container.ID != nil && *k.Container.ID == id {
			lines = append(lines, k)
			kills += k.Kills
		}
	})
	return lines, kills
}

// waitCRIKills waits for the daemon to have written want kills of container id.
func waitCRIKills(t *testing.T, out *lockedBuffer, id string, want uint64) []event.Kill {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		lines, n := criKills(t, out, id)
		if uint64(n) >= want || time.Now().After(deadline) {
			if uint64(n) != want {
				t.Fatalf("the daemon wrote %d kills of container %.12s, the kernel counted %d", n, id, want)
			}
			return lines
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func checkPodNames(t *testing.T, k event.Kill, pod *critest.Pod, container, comm string) {
	t.Helper()
	s := func(p *string) string {
		if p == nil {
			return "<null>"
		}
		return *p
	}
	md := pod.Config.Metadata
	if s(k.K8s.Namespace) != md.Namespace || s(k.K8s.Pod) != md.Name || s(k.K8s.Container) != container || s(k.K8s.PodUID) != md.Uid {
		t.Errorf("k8s %s/%s container %s uid %s, want %s/%s %s %s (errors %v)", s(k.K8s.Namespace), s(k.K8s.Pod),
			s(k.K8s.Container), s(k.K8s.PodUID), md.Namespace, md.Name, container, md.Uid, k.EnrichErrors)
	}
	if s(k.Container.Image) == "<null>" || s(k.Container.Name) != container || k.Container.Labels[critest.LabelPodName] != md.Name {
		t.Errorf("container: image %s name %s labels %v", s(k.Container.Image), s(k.Container.Name), k.Container.Labels)
	}
	if k.Victim.Comm != comm {
		t.Errorf("victim %s, want %s", k.Victim.Comm, comm)
	}
	if _, ok := k.EnrichErrors["cri"]; ok {
		t.Errorf("enrich_errors.cri: %s", k.EnrichErrors["cri"])
	}
}

func TestCRIPodNames(t *testing.T) {
	if inVM() {
		t.Skip("no container runtime in the test VM: the host's CI run covers containerd")
	}
	env := critest.Start(t)
	vm0, err := oomtest.VMStatOOMKills()
	if err != nil {
		t.Fatal(err)
	}
	out, started, stop := startDaemonWith(t, func(c *daemon.Config) { c.CRI = env.Endpoint })
	if started.CRIEndpoint != env.Endpoint {
		t.Fatalf("started with cri_endpoint %q, want %q", started.CRIEndpoint, env.Endpoint)
	}
	hog := func(comm string) []string {
		return append([]string{"/bin/oomhog"}, oomtest.Hog{MB: 128, Comm: comm}.Args()...)
	}

	t.Run("main process", func(t *testing.T) {
		pod := env.RunPod(t, critest.PodOpts{Name: "web-7d4b9", Namespace: "shop"})
		id := pod.CreateContainer(t, critest.ContainerOpts{Name: "web", Cmd: hog("crihog"), MemoryMB: 32})
		w := env.WatchOOMKills(t, pod.CgroupDir(t, id))
		env.StartCreated(t, id)
		if code, reason := env.WaitExited(t, id, 30*time.Second); code != critest.ExitOOMKilled || reason != critest.ReasonOOMKilled {
			t.Fatalf("container exited %d (%s), want 137 OOMKilled", code, reason)
		}
		lines := waitCRIKills(t, out, id, w.Kills(t))
		checkPodNames(t, lines[0], pod, "web", "crihog")
		raw, _ := json.Marshal(lines[0])
		t.Logf("the line (re-encoded from the schema's type): %s", raw)
	})

	t.Run("child process", func(t *testing.T) {
		pod := env.RunPod(t, critest.PodOpts{Name: "batch-x2k", Namespace: "jobs"})
		id := pod.CreateContainer(t, critest.ContainerOpts{Name: "worker", MemoryMB: 32,
			Cmd: []string{"/bin/sh", "-c", "/bin/oomhog " + joinArgs(oomtest.Hog{MB: 128, Comm: "child"}.Args()) + " & wait; sleep 600"}})
		w := env.WatchOOMKills(t, pod.CgroupDir(t, id))
		env.StartCreated(t, id)
		for deadline := time.Now().Add(30 * time.Second); w.Now() == 0 && time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		}
		lines := waitCRIKills(t, out, id, w.Kills(t))
		checkPodNames(t, lines[0], pod, "worker", "child")
		if st := env.Status(t, id); st.GetExitCode() != 0 || st.GetFinishedAt() != 0 {
			t.Errorf("the container ended (exit %d) though only its child was killed", st.GetExitCode())
		}
	})

	t.Run("pod removed at once", func(t *testing.T) {
		pod := env.RunPod(t, critest.PodOpts{Name: "gone-5f6", Namespace: "shop"})
		id := pod.CreateContainer(t, critest.ContainerOpts{Name: "api", Cmd: hog("gonehog"), MemoryMB: 32})
		w := env.WatchOOMKills(t, pod.CgroupDir(t, id))
		env.StartCreated(t, id)
		for deadline := time.Now().Add(30 * time.Second); w.Now() == 0 && time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		}
		pod.Remove(t) // the moment the kernel counted the kill
		lines := waitCRIKills(t, out, id, w.Kills(t))
		checkPodNames(t, lines[0], pod, "api", "gonehog")
	})

	stop()
	vm1, err := oomtest.VMStatOOMKills()
	if err != nil {
		t.Fatal(err)
	}
	total := 0
	out.lines(t, "oom_kill", func(b []byte) {
		var k event.Kill
		if err := json.Unmarshal(b, &k); err == nil {
			total += k.Kills
		}
	})
	if uint64(total) != vm1-vm0 {
		t.Errorf("the daemon wrote %d kills in all, /proc/vmstat oom_kill went up by %d", total, vm1-vm0)
	}
}

func joinArgs(args []string) string {
	s := ""
	for i, a := range args {
		if i > 0 {
			s += " "
		}
		s += a
	}
	return s
}

// What a lookup costs: on a miss (a ContainerStatus round trip) and from
// the cache; logged for the closing notes, never asserted as a time.
// Asserted: both name the same pod, and a runtime that never answers
// costs a lookup its bound, not more.
func TestCRILookupCost(t *testing.T) {
	if inVM() {
		t.Skip("no container runtime in the test VM: the host's CI run covers containerd")
	}
	env := critest.Start(t)
	c := cri.NewCache(cri.Options{Endpoint: env.Endpoint, OnError: func(err error) { t.Logf("cri: %v", err) }})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	defer func() { cancel(); <-done }()
	for deadline := time.Now().Add(10 * time.Second); c.Stats().Lists == 0 && time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
	}
	pod := env.RunPod(t, critest.PodOpts{Name: "cost-1", Namespace: "bench"})
	id := pod.StartContainer(t, critest.ContainerOpts{Name: "idle", Cmd: []string{"/bin/sleep", "600"}, MemoryMB: 16})
	t0 := time.Now()
	miss, err := c.Lookup(context.Background(), id)
	missTook := time.Since(t0)
	if err != nil {
		t.Fatalf("lookup of a new container: %v", err)
	}
	const n = 1000
	t0 = time.Now()
	for range n {
		if _, err := c.Lookup(context.Background(), id); err != nil {
			t.Fatal(err)
		}
	}
	hitTook := time.Since(t0) / n
	hit, _ := c.Lookup(context.Background(), id)
	if miss.Pod != "cost-1" || miss.Namespace != "bench" || miss.Name != "idle" || hit.Pod != miss.Pod || hit.PodUID != pod.UID {
		t.Errorf("miss %+v, hit %+v", miss, hit)
	}
	st := c.Stats()
	t.Logf("CRI lookup: %v on a miss (ContainerStatus), %v cached; runtime %s, events %t, %d lists", missTook.Round(time.Microsecond), hitTook, st.Runtime, st.Events, st.Lists)
	if st.Runtime != "containerd" {
		t.Errorf("runtime %q", st.Runtime)
	}
	if _, err := c.Lookup(context.Background(), "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"); !errors.Is(err, cri.ErrNotFound) {
		t.Errorf("an unknown container: %v, want ErrNotFound", err)
	}
}
