package deploy

// The Kubernetes manifest and the Vagrantfile, checked with what a Debian
// machine has: PyYAML (python3-yaml) parses the manifest, and Debian's
// vagrant validates the Vagrantfile offline (no box, no provider needed).
// No Kubernetes cluster is involved: TestContainerdRuntimeDefault runs the
// manifest's security context under containerd instead, and the RBAC is
// checked against what k8sevents calls here (the ClusterRole's rules) and
// in k8sevents' own TestManifestRBACMatchesCode (the calls against the
// manifest, on client-go's fake clientset).

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

// k8sArgs are the DaemonSet's arguments after the image's CMD: Events on
// the Pods, and the CRI socket that names them.
var k8sArgs = []string{"--k8s-events", "--cri-endpoint", "unix:///run/containerd/containerd.sock"}

// criMounts are the host paths the DaemonSet mounts read-only besides
// hostMounts: the CRI socket's directory.
var criMounts = []string{"/run/containerd"}

// eventsRule is the one RBAC rule k8sevents needs: core/v1 Events, create
// and then patch (count, lastTimestamp, message). It reads nothing.
var eventsRule = rule{APIGroups: []string{""}, Resources: []string{"events"}, Verbs: []string{"create", "patch"}}

type rule struct {
	APIGroups       []string `json:"apiGroups"`
	Resources       []string
	Verbs           []string
	ResourceNames   []string `json:"resourceNames"`
	NonResourceURLs []string `json:"nonResourceURLs"`
}

// k8s is the part of the manifest's objects this test reads.
type k8s struct {
	Kind     string
	Metadata struct{ Name, Namespace string }
	// ServiceAccount
	AutomountServiceAccountToken *bool `json:"automountServiceAccountToken"`
	// ClusterRole, ClusterRoleBinding
	Rules   []rule
	RoleRef struct {
		APIGroup string `json:"apiGroup"`
		Kind     string
		Name     string
	} `json:"roleRef"`
	Subjects []struct{ Kind, Name, Namespace string }
	Spec     struct {
		Template struct {
			Spec struct {
				ServiceAccountName           string `json:"serviceAccountName"`
				AutomountServiceAccountToken *bool  `json:"automountServiceAccountToken"`
				HostPID                      bool   `json:"hostPID"`
				HostNetwork                  bool   `json:"hostNetwork"`
				Tolerations                  []struct{ Operator, Key string }
				Containers                   []struct {
					Args []string
					Env  []struct {
						Name      string
						Value     *string
						ValueFrom *struct {
							FieldRef *struct {
								FieldPath string `json:"fieldPath"`
							} `json:"fieldRef"`
						} `json:"valueFrom"`
					}
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
						Name              string
						MountPath         string `json:"mountPath"`
						ReadOnly          bool   `json:"readOnly"`
						RecursiveReadOnly string `json:"recursiveReadOnly"`
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

// manifestObjects parses the manifest with PyYAML.
func manifestObjects(t *testing.T) []k8s {
	t.Helper()
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
	return objs
}

// one is the manifest's single object of kind.
func one(t *testing.T, objs []k8s, kind string) *k8s {
	t.Helper()
	var found []*k8s
	for i := range objs {
		if objs[i].Kind == kind {
			found = append(found, &objs[i])
		}
	}
	if len(found) != 1 {
		t.Fatalf("%s: %d %s objects among %d, want 1", manifest, len(found), kind, len(objs))
	}
	return found[0]
}

// TestDaemonSet parses the manifest and checks what docs/deploy.md
// promises: host pid namespace, exactly the unit's capabilities (all others
// dropped), uid 0 without privilege escalation, a read-only root, the host
// trees and the CRI socket's directory mounted read-only at the same
// paths, every node, small resources, and the image's own arguments with
// the Kubernetes ones after them.
// stateDir is --state-dir's default, the ledger's directory on the node.
const stateDir = "/var/lib/oomtrace"

func TestDaemonSet(t *testing.T) {
	ds := one(t, manifestObjects(t), "DaemonSet")
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
	types := map[string]string{}
	for _, v := range pod.Volumes {
		if v.HostPath != nil {
			volumes[v.Name] = v.HostPath.Path
			types[v.Name] = v.HostPath.Type
		}
	}
	var mounted []string
	for _, m := range c.VolumeMounts {
		host, ok := volumes[m.Name]
		if m.MountPath == stateDir {
			// The ledger: the one writable mount, made on a new node.
			if !ok || host != stateDir || m.ReadOnly || types[m.Name] != "DirectoryOrCreate" {
				t.Errorf("volume mount %+v (type %q): want hostPath %s read-write, type DirectoryOrCreate", m, types[m.Name], stateDir)
			}
		} else if !ok || host != m.MountPath || !m.ReadOnly {
			t.Errorf("volume mount %+v: want a read-only hostPath mounted at its own path", m)
		}
		mounted = append(mounted, m.MountPath)
	}
	slices.Sort(mounted)
	if wantMounts := slices.Sorted(slices.Values(slices.Concat(hostMounts, criMounts, []string{stateDir}))); !slices.Equal(mounted, wantMounts) {
		t.Errorf("mounts %v, want %v (what TestContainerImage and TestContainerdRuntimeDefault run with, the CRI socket's directory and the ledger)", mounted, wantMounts)
	}

	if c.Resources.Requests["memory"] == "" || c.Resources.Limits["memory"] == "" || c.Resources.Requests["cpu"] == "" {
		t.Errorf("resources %+v: want cpu and memory requests and a memory limit", c.Resources)
	}
	if cmd := jsonArgs(t, "CMD", only(t, readStages(t)[1], "CMD")); !slices.Equal(c.Args, slices.Concat(cmd, k8sArgs)) {
		t.Errorf("args %q, want the image's CMD %q then %q", c.Args, cmd, k8sArgs)
	}
	if c.LivenessProbe == nil || c.LivenessProbe.HTTPGet.Path != "/healthz" {
		t.Errorf("liveness probe %+v: want GET /healthz", c.LivenessProbe)
	}
}

// TestManifestRBAC checks the service account, its ClusterRole and the
// binding: the DaemonSet runs as the ServiceAccount the binding names, with
// its token mounted (--k8s-events posts with it), and the role grants
// exactly eventsRule: what k8sevents calls, nothing to read, no other
// group or resource.
func TestManifestRBAC(t *testing.T) {
	objs := manifestObjects(t)
	ds := one(t, objs, "DaemonSet")
	sa := one(t, objs, "ServiceAccount")
	role := one(t, objs, "ClusterRole")
	binding := one(t, objs, "ClusterRoleBinding")
	for _, kind := range []string{"Role", "RoleBinding"} {
		for _, o := range objs {
			if o.Kind == kind {
				t.Errorf("%s %s: want the ClusterRole and its binding alone", kind, o.Metadata.Name)
			}
		}
	}

	pod := ds.Spec.Template.Spec
	if pod.ServiceAccountName == "" || pod.ServiceAccountName != sa.Metadata.Name || sa.Metadata.Namespace != ds.Metadata.Namespace {
		t.Errorf("DaemonSet %s/%s runs as %q; ServiceAccount %s/%s: want the DaemonSet's service account, in its namespace",
			ds.Metadata.Namespace, ds.Metadata.Name, pod.ServiceAccountName, sa.Metadata.Namespace, sa.Metadata.Name)
	}
	for what, v := range map[string]*bool{"ServiceAccount": sa.AutomountServiceAccountToken, "pod spec": pod.AutomountServiceAccountToken} {
		if v != nil && !*v {
			t.Errorf("%s: automountServiceAccountToken false: --k8s-events needs the token", what)
		}
	}

	if !slices.EqualFunc(role.Rules, []rule{eventsRule}, func(a, b rule) bool {
		return slices.Equal(a.APIGroups, b.APIGroups) && slices.Equal(a.Resources, b.Resources) &&
			slices.Equal(slices.Sorted(slices.Values(a.Verbs)), b.Verbs) &&
			a.ResourceNames == nil && a.NonResourceURLs == nil
	}) {
		t.Errorf("ClusterRole %s rules %+v, want exactly %+v (what k8sevents calls)", role.Metadata.Name, role.Rules, eventsRule)
	}

	ref := binding.RoleRef
	if ref.APIGroup != "rbac.authorization.k8s.io" || ref.Kind != "ClusterRole" || ref.Name != role.Metadata.Name {
		t.Errorf("ClusterRoleBinding %s roleRef %+v, want ClusterRole %s", binding.Metadata.Name, ref, role.Metadata.Name)
	}
	want := []struct{ Kind, Name, Namespace string }{{"ServiceAccount", pod.ServiceAccountName, ds.Metadata.Namespace}}
	if !slices.Equal(binding.Subjects, want) {
		t.Errorf("ClusterRoleBinding %s subjects %+v, want %+v (the DaemonSet's service account alone)", binding.Metadata.Name, binding.Subjects, want)
	}
}

// TestManifestNodeName: the Events' source.host and reportingInstance come
// from NODE_NAME, which must be the node's name from the downward API (the
// pod's hostname is the pod's name).
func TestManifestNodeName(t *testing.T) {
	c := one(t, manifestObjects(t), "DaemonSet").Spec.Template.Spec.Containers[0]
	n := 0
	for _, e := range c.Env {
		if e.Name != "NODE_NAME" {
			continue
		}
		n++
		if e.Value != nil || e.ValueFrom == nil || e.ValueFrom.FieldRef == nil || e.ValueFrom.FieldRef.FieldPath != "spec.nodeName" {
			got, _ := json.Marshal(e)
			t.Errorf("env NODE_NAME %s: want valueFrom.fieldRef.fieldPath spec.nodeName", got)
		}
	}
	if n != 1 {
		t.Errorf("%d NODE_NAME entries in env, want 1", n)
	}
}

// TestManifestCRISocket: the --cri-endpoint socket's directory is mounted
// from the host at its own path, read-only (recursively where the node
// can), and the DaemonSet fails on a node without it rather than making
// it.
func TestManifestCRISocket(t *testing.T) {
	pod := one(t, manifestObjects(t), "DaemonSet").Spec.Template.Spec
	c := pod.Containers[0]
	i := slices.Index(c.Args, "--cri-endpoint")
	if i < 0 || i+1 >= len(c.Args) {
		t.Fatalf("args %q: no --cri-endpoint", c.Args)
	}
	if !slices.Contains(c.Args, "--k8s-events") {
		t.Errorf("args %q: no --k8s-events", c.Args)
	}
	sock, ok := strings.CutPrefix(c.Args[i+1], "unix://")
	if !ok {
		t.Fatalf("--cri-endpoint %q: want unix:///path", c.Args[i+1])
	}
	dir := filepath.Dir(sock)
	var name string
	for _, m := range c.VolumeMounts {
		if m.MountPath == dir {
			name = m.Name
			if !m.ReadOnly || m.RecursiveReadOnly != "IfPossible" {
				t.Errorf("mount of %s %+v: want readOnly, recursiveReadOnly IfPossible", dir, m)
			}
		}
	}
	if name == "" {
		t.Fatalf("no mount of %s, the directory of the CRI socket %s", dir, sock)
	}
	for _, v := range pod.Volumes {
		if v.Name == name && (v.HostPath == nil || v.HostPath.Path != dir || v.HostPath.Type != "Directory") {
			t.Errorf("volume %s %+v: want hostPath %s, type Directory", name, v.HostPath, dir)
		}
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
