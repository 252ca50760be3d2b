package critest

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/oomtrace/oomtrace/internal/workload"
)

func TestMain(m *testing.M) { Main(m) }

// hogCmd runs the hog to allocate mb MiB named comm.
func hogCmd(mb int, comm string) []string {
	return append([]string{"/bin/oomhog"}, workload.Hog{MB: mb, Comm: comm}.Args()...)
}

// runPod runs a pod and checks, after the pod's own cleanup, that nothing of
// it is left: no sandbox, no container, no cgroup in any hierarchy, and no
// kubepods cgroup that was not there before.
func runPod(t *testing.T, e *Env, o PodOpts) *Pod {
	t.Helper()
	var p *Pod
	hadKubepods := map[string]bool{}
	for _, m := range cgroupMounts() {
		_, err := os.Stat(filepath.Join(m, "kubepods"))
		hadKubepods[m] = err == nil
	}
	// Registered before RunPod's cleanup, so it runs after it.
	t.Cleanup(func() {
		if p != nil {
			checkGone(t, e, p, hadKubepods)
		}
	})
	t0 := time.Now()
	p = e.RunPod(t, o)
	t.Logf("containerd started in %v, pause image imported in %v; pod %s started in %v",
		e.StartTook, e.PauseTook, p.Config.Metadata.Name, time.Since(t0))
	return p
}

func checkGone(t *testing.T, e *Env, p *Pod, hadKubepods map[string]bool) {
	t.Helper()
	ctx := e.ctx(t)
	pods, err := e.Client().ListPodSandbox(ctx, &runtimeapi.ListPodSandboxRequest{})
	if err != nil {
		t.Fatal(err)
	}
	for _, sb := range pods.Items {
		if sb.Id == p.ID || sb.Metadata.Uid == p.UID {
			t.Errorf("pod %s still there after the test: %v", p.ID, sb.State)
		}
	}
	ctrs, err := e.Client().ListContainers(ctx, &runtimeapi.ListContainersRequest{
		Filter: &runtimeapi.ContainerFilter{PodSandboxId: p.ID},
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range ctrs.Containers {
		t.Errorf("container %.12s (%s) still there after the test", c.Id, c.Metadata.Name)
	}
	for _, m := range cgroupMounts() {
		dir := filepath.Join(m, podCgroupParent(p.QoS, p.UID))
		if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("pod cgroup %s still there after the test (%v)", dir, err)
		}
		if kp := filepath.Join(m, "kubepods"); !hadKubepods[m] {
			if _, err := os.Stat(kp); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("%s still there after the test (%v)", kp, err)
			}
		}
	}
	if _, err := os.Stat(shimSocket(e.d.sock(), p.ID)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the pod's shim socket is still there (%v)", err)
	}
}

// A container whose main process the OOM killer ends: the runtime reports
// it as Kubernetes shows it (exit 137, reason OOMKilled), and the kernel
// counted exactly one kill in its cgroup.
func TestContainerOOMKilled(t *testing.T) {
	e := Start(t)
	p := runPod(t, e, PodOpts{})
	e.HogImage(t)
	t.Logf("hog image built and imported in %v", e.HogTook)

	t0 := time.Now()
	id := p.CreateContainer(t, ContainerOpts{Name: "hog", MemoryMB: 32, Cmd: hogCmd(128, "crihog")})
	dir := p.CgroupDir(t, id)
	w := e.WatchOOMKills(t, dir)
	e.StartCreated(t, id)
	t.Logf("container created and started in %v", time.Since(t0))

	code, reason := e.WaitExited(t, id, 30*time.Second)
	t.Logf("container exited %v after it was created", time.Since(t0))
	if code != ExitOOMKilled || reason != ReasonOOMKilled {
		t.Errorf("container exited %d, reason %q; want %d, %q (the hog exits 3 when it is not killed)", code, reason, ExitOOMKilled, ReasonOOMKilled)
	}
	if n := w.Kills(t); n != 1 {
		t.Errorf("oom_kill of %s: %d, want 1", dir, n)
	}

	st := e.Status(t, id)
	for k, want := range map[string]string{
		LabelContainerName: "hog",
		LabelPodName:       p.Config.Metadata.Name,
		LabelPodNamespace:  "default",
		LabelPodUID:        p.UID,
	} {
		if st.Labels[k] != want {
			t.Errorf("container label %s: %q, want %q", k, st.Labels[k], want)
		}
	}
	if got := st.GetResources().GetLinux().GetMemoryLimitInBytes(); got != 32<<20 {
		t.Errorf("memory limit %d, want %d", got, 32<<20)
	}
	if !strings.HasPrefix(dir, "/sys/fs/cgroup/") || !strings.HasSuffix(dir, "/kubepods/burstable/pod"+p.UID+"/"+id) {
		t.Errorf("cgroup dir %s: not kubepods/burstable/pod<uid>/<id>", dir)
	}
}

// A container whose child the OOM killer ends keeps running: its main
// process (the shell) only waits for the child and goes on.
func TestChildOOMKilledContainerRuns(t *testing.T) {
	e := Start(t)
	p := runPod(t, e, PodOpts{Name: "child-oom", Namespace: "oomtrace-test"})
	script := strings.Join(hogCmd(128, "child"), " ") + " & wait; sleep 600"
	id := p.StartContainer(t, ContainerOpts{Name: "sh", MemoryMB: 32, Cmd: []string{"/bin/sh", "-c", script}})
	dir := p.CgroupDir(t, id)

	// Done once the child is dead (counted) and the shell has gone on to
	// sleep. busybox sh execs its last command, so the container's one
	// process is then sleep, still its pid 1.
	deadline := time.Now().Add(30 * time.Second)
	for {
		kills := e.OOMKills(t, dir)
		comms := cgroupComms(dir)
		if kills >= 1 && slices.Equal(comms, []string{"sleep"}) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 30s: oom_kill %d, processes %v; want 1 kill, [sleep]", kills, comms)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if st := e.Status(t, id); st.State != runtimeapi.ContainerState_CONTAINER_RUNNING {
		t.Errorf("container %v (exit %d, %q) after its child's OOM kill, want running", st.State, st.ExitCode, st.Reason)
	}
	if n := e.OOMKills(t, dir); n != 1 {
		t.Errorf("oom_kill of %s: %d, want 1", dir, n)
	}
	// No swap: memory+swap limited as much as memory (v1), or swap to 0 (v2).
	for file, want := range map[string]string{"memory.memsw.limit_in_bytes": strconv.Itoa(32 << 20), "memory.swap.max": "0"} {
		if data, err := os.ReadFile(filepath.Join(dir, file)); err == nil && strings.TrimSpace(string(data)) != want {
			t.Errorf("%s: %s, want %s", file, strings.TrimSpace(string(data)), want)
		}
	}

	// Remove takes it all away at once, not only at the test's end.
	p.Remove(t)
	_, err := e.Client().ContainerStatus(e.ctx(t), &runtimeapi.ContainerStatusRequest{ContainerId: id})
	if status.Code(err) != codes.NotFound {
		t.Errorf("ContainerStatus after Remove: %v, want NotFound", err)
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("cgroup %s after Remove: %v", dir, err)
	}
}

// A test binary killed mid-run (SIGKILL, as on a CI timeout) leaves its
// shim, pause process, cgroups, mounts and directory behind; the next run's
// sweep removes them all. The killed binary is this one, re-run as a helper.
func TestSweepDeadRun(t *testing.T) {
	Start(t) // skips where containerd cannot run
	ready := filepath.Join(t.TempDir(), "ready")
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperDeadRun$", "-test.v")
	cmd.Env = append(os.Environ(), "CRITEST_HELPER_READY="+ready)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	var dir, uid, qos, id string
	deadline := time.Now().Add(30 * time.Second)
	for {
		if data, err := os.ReadFile(ready); err == nil && strings.HasSuffix(string(data), "\n") {
			if _, err := fmt.Sscan(string(data), &dir, &uid, &qos, &id); err != nil {
				t.Fatalf("ready file %q: %v", data, err)
			}
			break
		}
		select {
		case err := <-exited:
			t.Fatalf("helper exited before it was ready: %v; output:\n%s", err, out.String())
		case <-time.After(10 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("helper not ready in 30s; output:\n%s", out.String())
		}
	}
	podDir := filepath.Join(cgroupMounts()[0], podCgroupParent(qos, uid))
	if len(cgroupPids(filepath.Join(podDir, id))) == 0 {
		t.Fatalf("no pause process in %s/%s", podDir, id)
	}
	_ = cmd.Process.Kill()
	<-exited

	sweep()
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("%s after the sweep: %v", dir, err)
	}
	for _, m := range cgroupMounts() {
		if d := filepath.Join(m, podCgroupParent(qos, uid)); !isGone(d) {
			t.Errorf("pod cgroup %s after the sweep", d)
		}
	}
	if s := shimSocket(filepath.Join(dir, "containerd.sock"), id); !isGone(s) {
		t.Errorf("shim socket %s after the sweep", s)
	}
	if mi, _ := os.ReadFile("/proc/self/mountinfo"); strings.Contains(string(mi), dir) {
		t.Errorf("mounts under %s after the sweep", dir)
	}
	// The shim and the pause process were killed; they may linger as
	// zombies until init reaps them, but none may run.
	procs, _ := os.ReadDir("/proc")
	for _, p := range procs {
		cmdline, err := os.ReadFile("/proc/" + p.Name() + "/cmdline")
		if err == nil && strings.Contains(string(cmdline), dir) {
			t.Errorf("process %s after the sweep: %q", p.Name(), cmdline)
		}
	}
}

// TestHelperDeadRun is TestSweepDeadRun's victim: it runs a pod, says where,
// and waits to be killed.
func TestHelperDeadRun(t *testing.T) {
	ready := os.Getenv("CRITEST_HELPER_READY")
	if ready == "" {
		t.Skip("helper of TestSweepDeadRun")
	}
	e := Start(t)
	p := e.RunPod(t, PodOpts{QoS: BestEffort})
	line := fmt.Sprintf("%s %s %s %s\n", e.Dir, p.UID, p.QoS, p.ID)
	if err := os.WriteFile(ready, []byte(line), 0o644); err != nil {
		t.Fatal(err)
	}
	// Bounded: should the test that kills it die first, this run ends
	// and cleans up by itself.
	time.Sleep(2 * time.Minute)
}

func isGone(path string) bool {
	_, err := os.Lstat(path)
	return errors.Is(err, os.ErrNotExist)
}

// cgroupComms lists the comms of the processes in a cgroup.
func cgroupComms(dir string) []string {
	var comms []string
	for _, pid := range cgroupPids(dir) {
		if c, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/comm"); err == nil {
			comms = append(comms, strings.TrimSpace(string(c)))
		}
	}
	return comms
}

// The archive is what docker save writes: a manifest naming the config and
// the layer, the config's diff_id the layer's digest.
func TestWriteDockerArchive(t *testing.T) {
	src := filepath.Join(t.TempDir(), "bin")
	if err := os.WriteFile(src, []byte("binary"), 0o755); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	cfg := ImageConfig{Entrypoint: []string{"/bin/x"}, Env: []string{"PATH=/bin"}}
	if err := WriteDockerArchive(&buf, "name:tag", cfg, []LayerFile{
		{Name: "bin", Mode: 0o755, Dir: true},
		{Name: "bin/x", Mode: 0o755, Src: src},
		{Name: "bin/y", Mode: 0o777, Link: "x"},
	}); err != nil {
		t.Fatal(err)
	}
	files := readTar(t, &buf)
	var manifest []struct {
		Config   string
		RepoTags []string
		Layers   []string
	}
	if err := json.Unmarshal(files["manifest.json"], &manifest); err != nil {
		t.Fatal(err)
	}
	if len(manifest) != 1 || len(manifest[0].Layers) != 1 || !slices.Equal(manifest[0].RepoTags, []string{"name:tag"}) {
		t.Fatalf("manifest.json: %s", files["manifest.json"])
	}
	var config struct {
		Config struct{ Entrypoint, Env []string }
		RootFS struct {
			Type    string
			DiffIDs []string `json:"diff_ids"`
		}
	}
	if err := json.Unmarshal(files[manifest[0].Config], &config); err != nil {
		t.Fatalf("config %s: %v", manifest[0].Config, err)
	}
	sum := sha256.Sum256(files[manifest[0].Config])
	if manifest[0].Config != hex.EncodeToString(sum[:])+".json" {
		t.Errorf("config named %s, not by its digest", manifest[0].Config)
	}
	layer := files[manifest[0].Layers[0]]
	sum = sha256.Sum256(layer)
	if !slices.Equal(config.RootFS.DiffIDs, []string{"sha256:" + hex.EncodeToString(sum[:])}) {
		t.Errorf("diff_ids %v, layer digest %x", config.RootFS.DiffIDs, sum)
	}
	if !slices.Equal(config.Config.Entrypoint, cfg.Entrypoint) || !slices.Equal(config.Config.Env, cfg.Env) {
		t.Errorf("config: %s", files[manifest[0].Config])
	}
	tr := tar.NewReader(bytes.NewReader(layer))
	var got []string
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, h.Name+" "+string(h.Typeflag)+" "+h.Linkname)
	}
	want := []string{"bin/ 5 ", "bin/x 0 ", "bin/y 2 x"}
	if !slices.Equal(got, want) {
		t.Errorf("layer: %q, want %q", got, want)
	}
}

func readTar(t *testing.T, r io.Reader) map[string][]byte {
	t.Helper()
	files := map[string][]byte{}
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return files
		}
		if err != nil {
			t.Fatal(err)
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		files[h.Name] = data
	}
}

func TestDNSName(t *testing.T) {
	for in, want := range map[string]string{
		"TestFoo/Sub_case#01":   "testfoo-sub-case-01",
		"__":                    "pod",
		strings.Repeat("a", 70): strings.Repeat("a", 63),
	} {
		if got := dnsName(in); got != want {
			t.Errorf("dnsName(%q) = %q, want %q", in, got, want)
		}
	}
}
