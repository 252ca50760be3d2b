package deploy

// The Kubernetes manifest and the Vagrantfile, checked with what a Debian
// machine has: PyYAML (python3-yaml) parses the manifest, and Debian's
// vagrant validates the Vagrantfile offline (no box, no provider needed).
// No Kubernetes cluster is involved: TestContainerdRuntimeDefault runs the
// manifest's security context under containerd instead.

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

const (
	manifest = "kubernetes/daemonset.yaml"
	// Debian's python3 with python3-yaml: a python3 earlier on PATH (a
	// virtualenv, pyenv) may lack the module.
	python = "/usr/bin/python3"
)

// k8s is the part of the manifest's objects this test reads.
type k8s struct {
	Kind     string
	Metadata struct{ Name, Namespace string }
	Spec     struct {
		Template struct {
			Spec struct {
				HostPID     bool `json:"hostPID"`
				HostNetwork bool `json:"hostNetwork"`
				Tolerations []struct{ Operator, Key string }
				Containers  []struct {
					Args            []string
					SecurityContext struct {
						RunAsUser                *int  `json:"runAsUser"`
						Privileged               *bool `json:"privileged"`
						AllowPrivilegeEscalation *bool `json:"allowPrivilegeEscalation"`
						ReadOnlyRootFilesystem   *bool `json:"readOnlyRootFilesystem"`
						Capabilities             struct{ Add, Drop []string }
					} `json:"securityContext"`
					Resources struct {
						Requests, Limits map[string]string
					}
					VolumeMounts []struct {
						Name      string
						MountPath string `json:"mountPath"`
						ReadOnly  bool   `json:"readOnly"`
					} `json:"volumeMounts"`
					LivenessProbe *struct {
						HTTPGet struct{ Path string } `json:"httpGet"`
					} `json:"livenessProbe"`
				}
				Volumes []struct {
					Name     string
					HostPath *struct{ Path, Type string } `json:"hostPath"`
				}
			}
		}
	}
}

// TestDaemonSet parses the manifest and checks what docs/deploy.md
// promises: host pid namespace, exactly the unit's capabilities (all others
// dropped), uid 0 without privilege escalation, a read-only root, the host
// trees mounted read-only at the same paths, every node, small resources,
// and the image's own arguments.
func TestDaemonSet(t *testing.T) {
	if out, err := exec.Command(python, "-c", "import yaml").CombinedOutput(); err != nil {
		t.Skipf("needs %s with PyYAML (Debian package python3-yaml): %v %s", python, err, out)
	}
	out, err := exec.Command(python, "-c",
		"import sys, json, yaml; json.dump(list(yaml.safe_load_all(open(sys.argv[1]))), sys.stdout)",
		manifest).Output()
	if err != nil {
		t.Fatalf("parsing %s: %v", manifest, err)
	}
	var objs []k8s
	if err := json.Unmarshal(out, &objs); err != nil {
		t.Fatal(err)
	}
	var ds *k8s
	for i := range objs {
		if objs[i].Kind == "DaemonSet" {
			ds = &objs[i]
		}
	}
	if ds == nil {
		t.Fatalf("%s: no DaemonSet among %d objects", manifest, len(objs))
	}
	pod := ds.Spec.Template.Spec
	if !pod.HostPID || pod.HostNetwork {
		t.Errorf("hostPID %v hostNetwork %v: want host pids (victims are reported by host pid), own network", pod.HostPID, pod.HostNetwork)
	}
	if !slices.ContainsFunc(pod.Tolerations, func(tl struct{ Operator, Key string }) bool {
		return tl.Operator == "Exists" && tl.Key == ""
	}) {
		t.Errorf("tolerations %+v: want one that tolerates every taint (operator Exists, no key)", pod.Tolerations)
	}
	if len(pod.Containers) != 1 {
		t.Fatalf("%d containers, want 1", len(pod.Containers))
	}
	c := pod.Containers[0]
	sc := c.SecurityContext

	var want []string
	for _, name := range unitCaps(t) {
		want = append(want, strings.TrimPrefix(name, "CAP_"))
	}
	add := slices.Sorted(slices.Values(sc.Capabilities.Add))
	if !slices.Equal(add, want) || !slices.Equal(sc.Capabilities.Drop, []string{"ALL"}) {
		t.Errorf("capabilities add %v drop %v: want add %v (the systemd unit's set), drop [ALL]", add, sc.Capabilities.Drop, want)
	}
	if sc.RunAsUser == nil || *sc.RunAsUser != 0 {
		t.Errorf("runAsUser %v: want 0 (no ambient capabilities in Kubernetes)", sc.RunAsUser)
	}
	for name, v := range map[string]*bool{"privileged": sc.Privileged, "allowPrivilegeEscalation": sc.AllowPrivilegeEscalation} {
		if v == nil || *v {
			t.Errorf("%s %v: want false, spelt out", name, v)
		}
	}
	if sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
		t.Errorf("readOnlyRootFilesystem %v: want true", sc.ReadOnlyRootFilesystem)
	}

	volumes := map[string]string{}
	for _, v := range pod.Volumes {
		if v.HostPath != nil {
			volumes[v.Name] = v.HostPath.Path
		}
	}
	var mounted []string
	for _, m := range c.VolumeMounts {
		host, ok := volumes[m.Name]
		if !ok || host != m.MountPath || !m.ReadOnly {
			t.Errorf("volume mount %+v: want a read-only hostPath mounted at its own path", m)
		}
		mounted = append(mounted, m.MountPath)
	}
	slices.Sort(mounted)
	if wantMounts := slices.Sorted(slices.Values(hostMounts)); !slices.Equal(mounted, wantMounts) {
		t.Errorf("mounts %v, want %v (what TestContainerImage and TestContainerdRuntimeDefault run with)", mounted, wantMounts)
	}

	if c.Resources.Requests["memory"] == "" || c.Resources.Limits["memory"] == "" || c.Resources.Requests["cpu"] == "" {
		t.Errorf("resources %+v: want cpu and memory requests and a memory limit", c.Resources)
	}
	if cmd := jsonArgs(t, "CMD", only(t, readStages(t)[1], "CMD")); !slices.Equal(c.Args, cmd) {
		t.Errorf("args %q, want the image's CMD %q", c.Args, cmd)
	}
	if c.LivenessProbe == nil || c.LivenessProbe.HTTPGet.Path != "/healthz" {
		t.Errorf("liveness probe %+v: want GET /healthz", c.LivenessProbe)
	}
}

// TestVagrantfile runs `vagrant validate`: the Ruby evaluates and every
// provisioner option exists. Provider blocks are not checked
// (--ignore-provider: no VirtualBox or libvirt on CI), nor is the box
// fetched. Vagrant's state goes to a temporary directory, not the tree.
func TestVagrantfile(t *testing.T) {
	if _, err := exec.LookPath("vagrant"); err != nil {
		t.Skip("needs vagrant (Debian package vagrant; scripts/install-deps.sh installs it)")
	}
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	tmp := t.TempDir()
	cmd := exec.Command("vagrant", "validate", "--ignore-provider")
	cmd.Env = append(os.Environ(),
		"VAGRANT_CWD="+root,
		"VAGRANT_DOTFILE_PATH="+filepath.Join(tmp, "dotfile"),
		"VAGRANT_HOME="+filepath.Join(tmp, "home"),
		"VAGRANT_CHECKPOINT_DISABLE=1", // no version check over the network
	)
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "validated successfully") {
		t.Fatalf("vagrant validate: %v\n%s", err, out)
	}
}
