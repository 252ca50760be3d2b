package deploy

// The container image and how the DaemonSet runs it. No registry is
// reachable from CI, so the Dockerfile's builder stage (FROM golang) cannot
// run here: TestDockerfile checks the file, and TestContainerImage builds
// the final stage's equivalent (the binary alone, with the Dockerfile's own
// ENTRYPOINT, CMD, USER and EXPOSE) with `docker import`, then runs it with
// the DaemonSet's privileges and mounts.

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/oomtrace/oomtrace/internal/dockertest"
)

const dockerfile = "docker/Dockerfile"

// hostMounts are the host paths the DaemonSet mounts read-only at the same
// place in the container; TestDaemonSet checks the manifest has exactly
// these, and TestContainerImage runs the image with them.
var hostMounts = []string{"/sys/kernel/btf", "/sys/fs/cgroup"}

// instruction is one Dockerfile instruction: its keyword, upper case, and
// the rest of its (joined) lines.
type instruction struct{ cmd, args string }

// readStages parses the Dockerfile into its stages, each starting with its
// FROM. Comments go; continued lines are joined.
func readStages(t *testing.T) [][]instruction {
	t.Helper()
	data, err := os.ReadFile(dockerfile)
	if err != nil {
		t.Fatal(err)
	}
	var stages [][]instruction
	var cur string
	for _, line := range strings.Split(string(data), "\n") {
		trimmed := strings.TrimSpace(line)
		if trimmed == "" || strings.HasPrefix(trimmed, "#") {
			continue
		}
		if strings.HasSuffix(trimmed, `\`) {
			cur += strings.TrimSuffix(trimmed, `\`) + " "
			continue
		}
		cur += trimmed
		cmd, args, _ := strings.Cut(cur, " ")
		cur = ""
		in := instruction{strings.ToUpper(cmd), strings.TrimSpace(args)}
		switch {
		case in.cmd == "FROM":
			stages = append(stages, []instruction{in})
		case len(stages) == 0:
			t.Fatalf("%s: %s before the first FROM", dockerfile, in.cmd)
		default:
			stages[len(stages)-1] = append(stages[len(stages)-1], in)
		}
	}
	return stages
}

// only returns the single instruction cmd of a stage.
func only(t *testing.T, stage []instruction, cmd string) string {
	t.Helper()
	var found []string
	for _, in := range stage {
		if in.cmd == cmd {
			found = append(found, in.args)
		}
	}
	if len(found) != 1 {
		t.Fatalf("%s: want one %s in the stage, have %q", dockerfile, cmd, found)
	}
	return found[0]
}

// jsonArgs decodes an exec-form ENTRYPOINT or CMD.
func jsonArgs(t *testing.T, cmd, s string) []string {
	t.Helper()
	var v []string
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		t.Fatalf("%s: %s %s: want the exec (JSON) form, there is no shell in the image: %v", dockerfile, cmd, s, err)
	}
	return v
}

// TestDockerfile checks the Dockerfile without building it: a Go builder of
// go.mod's release, a static build, and a final stage holding the binary
// alone, run as uid 0 with exec-form ENTRYPOINT and CMD.
func TestDockerfile(t *testing.T) {
	stages := readStages(t)
	if len(stages) != 2 {
		t.Fatalf("%s: %d stages, want 2 (build, final)", dockerfile, len(stages))
	}
	build, final := stages[0], stages[1]

	gomod, err := os.ReadFile("../go.mod")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^go (\d+\.\d+)`).FindSubmatch(gomod)
	if m == nil {
		t.Fatal("no go directive in go.mod")
	}
	from := strings.Fields(only(t, build, "FROM"))
	if len(from) != 3 || !strings.HasPrefix(from[0], "golang:"+string(m[1])) || !strings.EqualFold(from[1], "AS") {
		t.Errorf("build stage FROM %v: want golang:%s... AS <name>", from, m[1])
	}
	var buildRun string
	for _, in := range build {
		if in.cmd == "RUN" && strings.Contains(in.args, "go build") {
			buildRun = in.args
		}
	}
	for _, want := range []string{"CGO_ENABLED=0", "./cmd/oomtrace"} {
		if !strings.Contains(buildRun, want) {
			t.Errorf("build stage: no %q in its go build: %q", want, buildRun)
		}
	}

	if got := only(t, final, "FROM"); got != "scratch" {
		t.Errorf("final stage FROM %s, want scratch", got)
	}
	copyArgs := strings.Fields(only(t, final, "COPY"))
	if len(copyArgs) != 3 || copyArgs[0] != "--from="+from[2] {
		t.Errorf("final stage COPY %v: want --from=%s SRC DEST", copyArgs, from[2])
	}
	entry := jsonArgs(t, "ENTRYPOINT", only(t, final, "ENTRYPOINT"))
	if len(copyArgs) == 3 && (len(entry) != 1 || entry[0] != copyArgs[2]) {
		t.Errorf("ENTRYPOINT %v: want [%q], the copied binary", entry, copyArgs[2])
	}
	jsonArgs(t, "CMD", only(t, final, "CMD"))
	if u := only(t, final, "USER"); u != "0:0" && u != "0" && u != "root" {
		t.Errorf("USER %s: the capabilities reach uid 0 only (no ambient capabilities in Docker or Kubernetes)", u)
	}
}

// TestContainerImage runs the final stage's equivalent the way the
// DaemonSet does: host pid namespace, read-only root, every capability
// dropped but the systemd unit's, no_new_privs, the runtime's default
// seccomp profile, the host's BTF and cgroup trees mounted read-only and
// the Docker socket read-only. It must report a kill in a scratch cgroup on
// the host and name a container Docker OOM-kills.
func TestContainerImage(t *testing.T) {
	env := dockertest.RequireDocker(t)
	caps := unitCaps(t)
	requireCaps(t, caps)
	final := readStages(t)[1]
	bin := buildBinary(t)
	image := importImage(t, env, bin, final)
	docker := func(args ...string) (string, error) {
		return env.Docker(t.Context(), args...)
	}

	readyDir := t.TempDir()
	sock := strings.TrimPrefix(env.Host, "unix://")
	run := func(caps []string) (string, error) {
		args := []string{"run", "-d", "--name", fmt.Sprintf("oomtrace-deploy-%d", os.Getpid()),
			"--pid", "host", "--read-only", "--security-opt", "no-new-privileges", "--cap-drop", "ALL"}
		for _, c := range caps {
			args = append(args, "--cap-add", strings.TrimPrefix(c, "CAP_"))
		}
		for _, p := range hostMounts {
			args = append(args, "-v", p+":"+p+":ro")
		}
		args = append(args, "-v", sock+":/var/run/docker.sock:ro", "-v", readyDir+":/run/oomtrace", image)
		// Arguments replace CMD: the Dockerfile's, plus the ready file.
		args = append(args, jsonArgs(t, "CMD", only(t, final, "CMD"))...)
		return docker(append(args, "--ready-file", "/run/oomtrace/ready")...)
	}
	id, err := run(caps)
	if err != nil && strings.Contains(err.Error(), "unknown capability") {
		// Docker 20.10 (Debian 12's docker.io) predates the names CAP_BPF
		// and CAP_PERFMON (moby/moby#42601): its users grant CAP_SYS_ADMIN
		// in their place, as on kernels before 5.8 (docs/deploy.md).
		// Everything else about the run is the same.
		caps = oldEngineCaps(caps)
		t.Logf("this Docker engine refuses the unit's capability names (%v); running with %v instead", err, caps)
		id, err = run(caps)
	}
	if err != nil {
		t.Fatal(err)
	}
	// Not t.Context(): it is canceled before cleanups run, and the
	// container would stay.
	t.Cleanup(func() {
		if _, err := env.Docker(context.Background(), "rm", "-f", id); err != nil {
			t.Errorf("removing the tracer's container: %v", err)
		}
	})
	logs := func() []string {
		out, err := docker("logs", id)
		if err != nil {
			t.Fatalf("docker logs: %v", err)
		}
		if out == "" {
			return nil
		}
		return strings.Split(out, "\n")
	}

	ready := filepath.Join(readyDir, "ready")
	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, err := os.Stat(ready); err == nil {
			break
		}
		if time.Now().After(deadline) {
			state, _ := env.Inspect(t.Context(), id)
			stderr, _ := exec.Command("docker", "--host", env.Host, "logs", id).CombinedOutput()
			t.Fatalf("no ready file after 30s; container %+v; output: %s", state, stderr)
		}
		time.Sleep(20 * time.Millisecond)
	}
	tr := &tracer{ready: ready}
	pid := tr.pid(t)
	got, err := procCaps(pid)
	if err != nil {
		t.Fatal(err)
	}
	if want := capMask(caps); got["CapEff"] != want || got["CapPrm"] != want || got["CapBnd"] != want {
		t.Errorf("in the container: CapEff %016x CapPrm %016x CapBnd %016x, want %016x (%v)",
			got["CapEff"], got["CapPrm"], got["CapBnd"], want, caps)
	}

	// A kill on the host, in a scratch cgroup.
	hog, path, kernelKills := oomKill(t, "image-hog")
	checkKill(t, waitKills(t, logs, path, kernelKills), hog, "image-hog", kernelKills)

	// A container Docker OOM-kills: named through the read-only socket.
	name := fmt.Sprintf("oomtrace-deploy-victim-%d", os.Getpid())
	victim, code := env.RunWait(t, dockertest.RunOpts{Name: name, Cmd: dockertest.HogCmd(256, 1, "ctrhog")})
	if code != dockertest.ExitOOMKilled {
		t.Fatalf("victim container exited %d, want %d", code, dockertest.ExitOOMKilled)
	}
	var named []event
	deadline = time.Now().Add(20 * time.Second)
	for len(named) == 0 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
		named = nil
		for _, e := range parseEvents(t, logs()) {
			if e.Message == "oom_kill" && e.Victim.Cgroup.Path != nil && strings.Contains(*e.Victim.Cgroup.Path, victim) {
				named = append(named, e)
			}
		}
	}
	if len(named) != 1 || named[0].Container.Name == nil || *named[0].Container.Name != name || named[0].Victim.Comm != "ctrhog" {
		var kills []string
		for _, l := range logs() {
			if strings.Contains(l, `"oom_kill"`) {
				kills = append(kills, l)
			}
		}
		t.Errorf("container kill: %d events %+v; want one, victim ctrhog, container named %s (id %s); the tracer's oom_kill lines: %s", len(named), named, name, victim, kills)
	}

	if _, err := docker("stop", "--time", "15", id); err != nil {
		t.Fatal(err)
	}
	state, err := env.Inspect(t.Context(), id)
	if err != nil || state.ExitCode != 0 {
		t.Errorf("after docker stop: %+v, %v: want exit 0", state, err)
	}
	if l := logs(); len(l) == 0 || !strings.Contains(l[len(l)-1], `"oomtrace_stopped"`) {
		t.Errorf("last line after docker stop: %q", l[len(l)-1:])
	}
}

// oldEngineCaps is caps with CAP_SYS_ADMIN in place of CAP_BPF and
// CAP_PERFMON, for engines and kernels that do not know those two.
func oldEngineCaps(caps []string) []string {
	out := []string{"CAP_SYS_ADMIN"}
	for _, c := range caps {
		if c != "CAP_BPF" && c != "CAP_PERFMON" {
			out = append(out, c)
		}
	}
	slices.Sort(out)
	return out
}

// importImage makes the final stage with `docker import`: the binary at
// the COPY destination, and the stage's ENTRYPOINT, CMD, USER and EXPOSE.
func importImage(t *testing.T, env *dockertest.Env, bin string, final []instruction) string {
	t.Helper()
	dest := strings.TrimPrefix(strings.Fields(only(t, final, "COPY"))[2], "/")
	var changes []string
	for _, in := range final {
		switch in.cmd {
		case "ENTRYPOINT", "CMD", "USER", "EXPOSE", "ENV", "WORKDIR":
			changes = append(changes, "--change", in.cmd+" "+in.args)
		case "FROM", "COPY":
		default:
			t.Fatalf("final stage: %s: not something docker import can apply; teach this test", in.cmd)
		}
	}
	var rootfs bytes.Buffer
	tw := tar.NewWriter(&rootfs)
	data, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: dest, Mode: 0o755, Size: int64(len(data))}); err != nil {
		t.Fatal(err)
	}
	if _, err := tw.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	ref := "oomtrace-deploy:" + strconv.Itoa(os.Getpid())
	cmd := exec.CommandContext(t.Context(), "docker", slices.Concat([]string{"--host", env.Host, "import"}, changes, []string{"-", ref})...)
	cmd.Stdin = &rootfs
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("docker import: %v: %s", err, out)
	}
	t.Cleanup(func() { _, _ = env.Docker(context.Background(), "rmi", ref) })
	return ref
}
