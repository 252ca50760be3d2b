package main

// The binary against a real Docker engine: OOM-killed containers are named,
// also when Docker removed them (--rm) before the event was written, and
// kills still come out, with an error, while Docker is down.

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/oomtrace/oomtrace/event"
	"github.com/oomtrace/oomtrace/internal/dockertest"
	"github.com/oomtrace/oomtrace/internal/oomtest"
)

// kills decodes the oom_kill lines through the schema's own type.
func (l *lines) kills(t *testing.T) []event.Kill {
	t.Helper()
	var out []event.Kill
	for _, line := range l.snapshot() {
		var head struct{ Message string }
		if err := json.Unmarshal([]byte(line), &head); err != nil {
			t.Fatalf("invalid JSON line %q: %v", line, err)
		}
		if head.Message != (event.Kill{}).Name() {
			continue
		}
		var ev event.Kill
		if err := json.Unmarshal([]byte(line), &ev); err != nil {
			t.Fatalf("oom_kill line %q does not decode: %v", line, err)
		}
		out = append(out, ev)
	}
	return out
}

// waitFor waits until n oom_kill lines are out (or 20 s), then returns them.
func (l *lines) waitFor(t *testing.T, n int) []event.Kill {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for len(l.kills(t)) < n && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(300 * time.Millisecond) // a duplicate would show now
	return l.kills(t)
}

func byContainer(evs []event.Kill, id string) []event.Kill {
	var out []event.Kill
	for _, e := range evs {
		if e.Container.ID != nil && *e.Container.ID == id {
			out = append(out, e)
		}
	}
	return out
}

func str(p *string) string {
	if p == nil {
		return "<null>"
	}
	return *p
}

func TestBinaryNamesDockerContainers(t *testing.T) {
	env := dockertest.RequireDocker(t)
	image := env.Image(t)
	bin := buildBinary(t)
	cmd, out, stderr := startBinaryEnv(t, bin, []string{"DOCKER_HOST=" + env.Host}, "--docker", "on")
	vmBefore, _ := oomtest.VMStatOOMKills()

	labels := map[string]string{"com.docker.compose.project": "demo", "team": "core", "odd": "a\"b\\\\c\\x01"}
	named, code := env.RunWait(t, dockertest.RunOpts{
		Name: "oomtrace-e2e-named", Labels: labels, Cmd: dockertest.HogCmd(256, 2, "dockerhog"),
	})
	if code != dockertest.ExitOOMKilled {
		t.Fatalf("named container exited %d, want 137", code)
	}
	// Docker learns of the OOM from its own event, which may come after
	// the exit it reported: wait for it, a bounded time.
	state, err := env.Inspect(t.Context(), named)
	for deadline := time.Now().Add(10 * time.Second); err == nil && !state.OOMKilled && time.Now().Before(deadline); {
		time.Sleep(50 * time.Millisecond)
		state, err = env.Inspect(t.Context(), named)
	}
	if err != nil || !state.OOMKilled {
		t.Fatalf("docker inspect: %+v, %v: want OOMKilled", state, err)
	}
	removed, code := env.RunWait(t, dockertest.RunOpts{
		Name: "oomtrace-e2e-rm", Remove: true, Labels: map[string]string{"run": "rm"}, Cmd: dockertest.HogCmd(256, 1, "rmhog"),
	})
	if code != dockertest.ExitOOMKilled {
		t.Fatalf("--rm container exited %d, want 137", code)
	}
	env.WaitRemoved(t, removed, 10*time.Second)

	vmAfter, _ := oomtest.VMStatOOMKills()
	evs := out.waitFor(t, int(vmAfter-vmBefore))
	if len(evs) != int(vmAfter-vmBefore) {
		t.Errorf("%d oom_kill lines, /proc/vmstat counted %d", len(evs), vmAfter-vmBefore)
	}
	for _, c := range []struct {
		id, name, comm string
		labels         map[string]string
	}{
		{named, "oomtrace-e2e-named", "dockerhog", labels},
		{removed, "oomtrace-e2e-rm", "rmhog", map[string]string{"run": "rm"}},
	} {
		got := byContainer(evs, c.id)
		if len(got) != 1 {
			t.Errorf("container %s: %d events", c.name, len(got))
			continue
		}
		e := got[0]
		if str(e.Container.Runtime) != "docker" || str(e.Container.Name) != c.name ||
			str(e.Container.Image) != image || !strings.HasPrefix(str(e.Container.ImageID), "sha256:") {
			t.Errorf("container %s: runtime %s name %s image %s image id %s", c.name,
				str(e.Container.Runtime), str(e.Container.Name), str(e.Container.Image), str(e.Container.ImageID))
		}
		for k, v := range c.labels {
			if e.Container.Labels[k] != v {
				t.Errorf("container %s: label %q = %q, want %q", c.name, k, e.Container.Labels[k], v)
			}
		}
		if e.Container.MemoryLimitBytes == nil || *e.Container.MemoryLimitBytes != 64<<20 {
			t.Errorf("container %s: memory limit %v", c.name, e.Container.MemoryLimitBytes)
		}
		if e.Victim.Comm != c.comm || !strings.Contains(str(e.Victim.Cgroup.Path), c.id) {
			t.Errorf("container %s: victim %s in %s", c.name, e.Victim.Comm, str(e.Victim.Cgroup.Path))
		}
		if len(e.EnrichErrors) != 0 {
			t.Errorf("container %s: enrichment errors %v", c.name, e.EnrichErrors)
		}
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	<-out.done
	if err := cmd.Wait(); err != nil {
		t.Errorf("exit: %v; stderr %s", err, stderr.String())
	}
}

// With Docker down, a kill in a container's cgroup still comes out at once,
// with the container id from the path and an error instead of its name; once
// Docker is back, containers are named again.
func TestBinaryWithDockerDownAndBack(t *testing.T) {
	env := dockertest.RequireDocker(t)
	h := oomtest.MustHierarchy(t)
	bin := buildBinary(t)
	_, out, _ := startBinaryEnv(t, bin, []string{"DOCKER_HOST=" + env.Host}, "--docker", "on")
	env.StopDaemon(t) // restarted when the test ends

	// A scratch cgroup whose path reads like a Docker container's (systemd
	// driver form), so the tracer asks Docker about it.
	raw := make([]byte, 32)
	_, _ = rand.Read(raw)
	id := hex.EncodeToString(raw)
	parent := oomtest.NewCgroup(t, h, nil, "dockerdown", 0)
	cg := oomtest.NewCgroupExact(t, h, parent, "docker-"+id+".scope", 64<<20)
	before, _ := cg.OOMKills()
	p, err := oomtest.Hog{Cgroup: cg, MB: 256, Comm: "downhog"}.Start(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if killed, err := p.Wait(); err != nil || !killed {
		t.Fatalf("hog: killed=%v err=%v", killed, err)
	}
	after, _ := cg.OOMKills()
	start := time.Now()
	evs := byContainer(out.waitFor(t, int(after-before)), id)
	if len(evs) != int(after-before) || len(evs) != 1 {
		t.Fatalf("%d events for the container, kernel counted %d", len(evs), after-before)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("event took %v with Docker down", took)
	}
	e := evs[0]
	if e.Container.Name != nil || !strings.Contains(e.EnrichErrors["docker"], "docker unavailable") {
		t.Errorf("name %s, errors %v: want no name and a docker error", str(e.Container.Name), e.EnrichErrors)
	}

	// Docker comes back: the daemon reconnects and names containers again.
	env.StartDaemon(t)
	back, code := env.RunWait(t, dockertest.RunOpts{Name: "oomtrace-e2e-back", Cmd: dockertest.HogCmd(256, 1, "backhog")})
	if code != dockertest.ExitOOMKilled {
		t.Fatalf("container after restart exited %d", code)
	}
	deadline := time.Now().Add(20 * time.Second)
	var got []event.Kill
	for len(got) == 0 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
		got = byContainer(out.kills(t), back)
	}
	if len(got) != 1 || str(got[0].Container.Name) != "oomtrace-e2e-back" || len(got[0].EnrichErrors) != 0 {
		t.Errorf("after Docker restarted: %d events, name %s, errors %v", len(got), str(firstName(got)), firstErrors(got))
	}
}

func firstName(evs []event.Kill) *string {
	if len(evs) == 0 {
		return nil
	}
	return evs[0].Container.Name
}

func firstErrors(evs []event.Kill) map[string]string {
	if len(evs) == 0 {
		return nil
	}
	return evs[0].EnrichErrors
}
