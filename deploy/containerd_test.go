package deploy

// The DaemonSet's security context under containerd, the runtime most
// Kubernetes nodes use: a private containerd (Debian's, installed with
// docker.io) runs the image with exactly the unit's capabilities, the
// runtime's default seccomp profile (what `seccompProfile: RuntimeDefault`
// selects under the CRI), no_new_privs, a read-only root, the host's pid
// namespace and the DaemonSet's read-only mounts. Docker 20.10 cannot test
// that set (it refuses the names CAP_BPF and CAP_PERFMON); containerd 1.6
// takes them.

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// containerdDefaultCaps is containerd's default capability set for a
// container (oci.WithDefaultSpec), which ctr can only drop one by one.
var containerdDefaultCaps = []string{
	"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW",
	"CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE",
	"CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE",
}

func TestContainerdRuntimeDefault(t *testing.T) {
	caps := unitCaps(t)
	requireCaps(t, caps)
	if os.Getenv("OOMTRACE_VM") == "1" {
		t.Skip("no container runtime in the test VM")
	}
	for _, tool := range []string{"containerd", "ctr"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("needs %s (Debian package containerd, which docker.io brings)", tool)
		}
	}
	bin := buildBinary(t)
	final := readStages(t)[1]
	entry := jsonArgs(t, "ENTRYPOINT", only(t, final, "ENTRYPOINT"))
	cmdArgs := jsonArgs(t, "CMD", only(t, final, "CMD"))

	// A private containerd: its own socket, root and state.
	dir, err := os.MkdirTemp("", "oomtrace-containerd-")
	if err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(dir, "containerd.sock")
	logf, err := os.Create(filepath.Join(dir, "containerd.log"))
	if err != nil {
		t.Fatal(err)
	}
	d := exec.Command("containerd", "--address", sock, "--root", filepath.Join(dir, "root"), "--state", filepath.Join(dir, "state"))
	d.Stdout, d.Stderr = logf, logf
	d.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	if err := d.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = d.Process.Signal(syscall.SIGTERM)
		_ = d.Wait()
		logf.Close()
		_ = os.RemoveAll(dir)
		// containerd makes a cgroup per namespace in every hierarchy and
		// leaves it behind when the namespace's last container is gone.
		left, _ := filepath.Glob("/sys/fs/cgroup/*/oomtrace-deploy")
		if top, err := filepath.Glob("/sys/fs/cgroup/oomtrace-deploy"); err == nil {
			left = append(left, top...)
		}
		for _, cg := range left {
			if err := os.Remove(cg); err != nil {
				t.Errorf("removing containerd's cgroup %s: %v", cg, err)
			}
		}
	})
	ctr := func(args ...string) *exec.Cmd {
		return exec.Command("ctr", slices.Concat([]string{"--address", sock, "--namespace", "oomtrace-deploy"}, args)...)
	}
	deadline := time.Now().Add(20 * time.Second)
	for ctr("version").Run() != nil {
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(logf.Name())
			t.Fatalf("containerd did not answer in 20s: %s", log)
		}
		time.Sleep(50 * time.Millisecond)
	}

	// The image: the binary at the entrypoint's path, as an OCI archive.
	const ref = "docker.io/library/oomtrace-deploy:test"
	archive := filepath.Join(dir, "image.tar")
	if err := writeOCIArchive(archive, bin, entry[0], ref); err != nil {
		t.Fatal(err)
	}
	// native: no overlayfs needed (this sandbox's Docker uses vfs too).
	if out, err := ctr("images", "import", "--snapshotter", "native", archive).CombinedOutput(); err != nil {
		t.Fatalf("ctr images import: %v: %s", err, out)
	}

	readyDir := t.TempDir()
	args := []string{"run", "--rm", "--snapshotter", "native", "--read-only", "--seccomp",
		// Our pid namespace is the host's when this test may run at all
		// (it creates memory cgroups and loads BPF).
		"--with-ns", fmt.Sprintf("pid:/proc/%d/ns/pid", os.Getpid()),
		"--mount", "type=bind,src=" + readyDir + ",dst=/run/oomtrace,options=rbind:rw"}
	for _, p := range hostMounts {
		args = append(args, "--mount", "type=bind,src="+p+",dst="+p+",options=rbind:ro")
	}
	for _, c := range containerdDefaultCaps {
		if !slices.Contains(caps, c) {
			args = append(args, "--cap-drop", c)
		}
	}
	for _, c := range caps {
		args = append(args, "--cap-add", c)
	}
	args = append(args, ref, "oomtrace-deploy")
	args = slices.Concat(args, entry, cmdArgs, []string{"--ready-file", "/run/oomtrace/ready"})
	tr := &tracer{ready: filepath.Join(readyDir, "ready"), stderr: &lockedBuffer{}, done: make(chan struct{})}
	tr.cmd = ctr(args...)
	tr.cmd.Stderr = tr.stderr
	var stdout lockedBuffer
	tr.cmd.Stdout = &stdout
	if err := tr.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { tr.err = tr.cmd.Wait(); close(tr.done) }()
	t.Cleanup(func() {
		_ = ctr("task", "kill", "--signal", "SIGKILL", "oomtrace-deploy").Run()
		select {
		case <-tr.done:
		case <-time.After(10 * time.Second):
			_ = tr.cmd.Process.Kill()
		}
	})
	lines := func() []string {
		s := strings.TrimSpace(stdout.String())
		if s == "" {
			return nil
		}
		// The last line may be half written.
		all := strings.Split(s, "\n")
		if !strings.HasSuffix(stdout.String(), "\n") {
			all = all[:len(all)-1]
		}
		return all
	}
	if !tr.waitReady(t) {
		t.Fatalf("ctr run exited before ready: %v; stderr: %s", tr.err, tr.stderr.String())
	}
	pid := tr.pid(t)
	st, err := procCaps(pid)
	if err != nil {
		t.Fatal(err)
	}
	want := capMask(caps)
	for _, set := range []string{"CapEff", "CapPrm", "CapBnd"} {
		if st[set] != want {
			t.Errorf("in the container: %s %016x, want %016x (%v)", set, st[set], want, caps)
		}
	}
	status, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	for _, line := range []string{"NoNewPrivs:\t1", "Seccomp:\t2"} {
		if !strings.Contains(string(status), line+"\n") {
			t.Errorf("in the container: no %q in /proc/%d/status", line, pid)
		}
	}

	hog, path, kernelKills := oomKill(t, "ctrd-hog")
	checkKill(t, waitKills(t, lines, path, kernelKills), hog, "ctrd-hog", kernelKills)

	if out, err := ctr("task", "kill", "--signal", "SIGTERM", "oomtrace-deploy").CombinedOutput(); err != nil {
		t.Fatalf("ctr task kill: %v: %s", err, out)
	}
	tr.waitStopped(t)
	if l := lines(); len(l) == 0 || !strings.Contains(l[len(l)-1], `"oomtrace_stopped"`) {
		t.Errorf("last line after SIGTERM: %q", l[max(len(l)-1, 0):])
	}
}

// writeOCIArchive writes an OCI image layout archive, as `ctr images
// import` reads it: one layer holding bin at path, named ref.
func writeOCIArchive(archive, bin, path, ref string) error {
	data, err := os.ReadFile(bin)
	if err != nil {
		return err
	}
	var layer bytes.Buffer
	lw := tar.NewWriter(&layer)
	if err := lw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: strings.TrimPrefix(path, "/"), Mode: 0o755, Size: int64(len(data))}); err != nil {
		return err
	}
	if _, err := lw.Write(data); err != nil {
		return err
	}
	if err := lw.Close(); err != nil {
		return err
	}
	digest := func(b []byte) string { s := sha256.Sum256(b); return "sha256:" + hex.EncodeToString(s[:]) }
	desc := func(mt string, b []byte) map[string]any {
		return map[string]any{"mediaType": mt, "digest": digest(b), "size": len(b)}
	}
	config, _ := json.Marshal(map[string]any{
		"architecture": "amd64", "os": "linux",
		"rootfs": map[string]any{"type": "layers", "diff_ids": []string{digest(layer.Bytes())}},
	})
	manifest, _ := json.Marshal(map[string]any{
		"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
		"config": desc("application/vnd.oci.image.config.v1+json", config),
		"layers": []any{desc("application/vnd.oci.image.layer.v1.tar", layer.Bytes())},
	})
	m := desc("application/vnd.oci.image.manifest.v1+json", manifest)
	m["annotations"] = map[string]string{"io.containerd.image.name": ref}
	index, _ := json.Marshal(map[string]any{"schemaVersion": 2, "manifests": []any{m}})

	f, err := os.Create(archive)
	if err != nil {
		return err
	}
	defer f.Close()
	tw := tar.NewWriter(f)
	for _, e := range []struct {
		name string
		b    []byte
	}{
		{"oci-layout", []byte(`{"imageLayoutVersion":"1.0.0"}`)},
		{"index.json", index},
		{"blobs/sha256/" + strings.TrimPrefix(digest(layer.Bytes()), "sha256:"), layer.Bytes()},
		{"blobs/sha256/" + strings.TrimPrefix(digest(config), "sha256:"), config},
		{"blobs/sha256/" + strings.TrimPrefix(digest(manifest), "sha256:"), manifest},
	} {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: e.name, Mode: 0o644, Size: int64(len(e.b))}); err != nil {
			return err
		}
		if _, err := tw.Write(e.b); err != nil {
			return err
		}
	}
	return tw.Close()
}
