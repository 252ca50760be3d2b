package k8sevents

import (
	"bufio"
	"errors"
	"io"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/kubernetes/scheme"
)

const manifest = "../deploy/kubernetes/daemonset.yaml"

// manifestObjects decodes every object of the DaemonSet manifest into its
// client-go type, strictly: an unknown or repeated field is an error.
func manifestObjects(t *testing.T) []runtime.Object {
	t.Helper()
	f, err := os.Open(manifest)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	decode := serializer.NewCodecFactory(scheme.Scheme, serializer.EnableStrict).UniversalDeserializer()
	r := utilyaml.NewYAMLReader(bufio.NewReader(f))
	var objs []runtime.Object
	for {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			return objs
		}
		if err != nil {
			t.Fatal(err)
		}
		blank := true
		for _, line := range strings.Split(string(doc), "\n") {
			if l := strings.TrimSpace(line); l != "" && l != "---" && !strings.HasPrefix(l, "#") {
				blank = false
			}
		}
		if blank {
			continue
		}
		obj, _, err := decode.Decode(doc, nil, nil)
		if err != nil {
			t.Fatalf("%s: %v", manifest, err)
		}
		objs = append(objs, obj)
	}
}

// perm is one API permission: verb on group/resource.
type perm struct{ group, resource, verb string }

// TestManifestRBACMatchesCode runs the Poster through everything it does
// (create, aggregate into a patch, re-create after the Event is gone) on
// the fake clientset, records each API call's verb and resource, and checks
// that the manifest's ClusterRole, bound to the DaemonSet's service
// account, grants exactly those: no call the cluster would refuse, and
// nothing granted that the code does not use.
func TestManifestRBACMatchesCode(t *testing.T) {
	h := newHarness(t, Options{Forget: 3 * time.Hour})
	h.run()
	h.p.Kill(kill("a-0", 1))
	h.flush()
	h.p.Kill(kill("a-0", 2))
	h.clock.Add(time.Minute)
	h.flush() // patched
	ev := only(t, h.events("shop"))
	if err := h.client.Tracker().Delete(schema.GroupVersionResource{Version: "v1", Resource: "events"}, "shop", ev.Name); err != nil {
		t.Fatal(err)
	}
	h.clock.Add(time.Hour)
	h.p.Kill(kill("a-0", 3))
	h.flush() // patch: not found; create
	if s := h.p.Stats(); s.Created != 2 || s.Patched != 1 || s.Errors != 0 {
		t.Fatalf("stats %+v: the scenario did not run as meant", s)
	}
	used := map[perm]bool{}
	for _, a := range h.client.Actions() {
		r := a.GetResource()
		if a.GetSubresource() != "" {
			t.Errorf("call %s on %s/%s: a subresource", a.GetVerb(), r.Resource, a.GetSubresource())
		}
		used[perm{r.Group, r.Resource, a.GetVerb()}] = true
	}

	objs := manifestObjects(t)
	var ds *appsv1.DaemonSet
	roles := map[string]*rbacv1.ClusterRole{}
	var bindings []*rbacv1.ClusterRoleBinding
	for _, o := range objs {
		switch o := o.(type) {
		case *appsv1.DaemonSet:
			ds = o
		case *rbacv1.ClusterRole:
			roles[o.Name] = o
		case *rbacv1.ClusterRoleBinding:
			bindings = append(bindings, o)
		case *rbacv1.Role, *rbacv1.RoleBinding:
			t.Errorf("%s: a namespaced role or binding: the Events go to every pod's namespace", manifest)
		case *corev1.ServiceAccount:
		default:
			t.Errorf("%s: unexpected %T", manifest, o)
		}
	}
	if ds == nil {
		t.Fatalf("%s: no DaemonSet", manifest)
	}
	granted := map[perm]bool{}
	for _, b := range bindings {
		mine := slices.ContainsFunc(b.Subjects, func(s rbacv1.Subject) bool {
			return s.Kind == rbacv1.ServiceAccountKind && s.Name == ds.Spec.Template.Spec.ServiceAccountName && s.Namespace == ds.Namespace
		})
		role := roles[b.RoleRef.Name]
		if !mine || b.RoleRef.Kind != "ClusterRole" || role == nil {
			t.Errorf("ClusterRoleBinding %s: not of the DaemonSet's service account to a ClusterRole of the manifest", b.Name)
			continue
		}
		for _, r := range role.Rules {
			if len(r.ResourceNames) > 0 || len(r.NonResourceURLs) > 0 {
				t.Errorf("ClusterRole %s rule %+v: resourceNames or nonResourceURLs, which the code cannot use", role.Name, r)
			}
			for _, g := range r.APIGroups {
				for _, res := range r.Resources {
					for _, v := range r.Verbs {
						granted[perm{g, res, v}] = true
					}
				}
			}
		}
	}
	for p := range used {
		if !granted[p] {
			t.Errorf("the code calls %s on %q/%s: not granted by the manifest", p.verb, p.group, p.resource)
		}
	}
	for p := range granted {
		if !used[p] {
			t.Errorf("the manifest grants %s on %q/%s: the code never calls it", p.verb, p.group, p.resource)
		}
	}
	if len(used) == 0 {
		t.Error("no API call recorded")
	}
	t.Logf("calls: %v", used)
}
