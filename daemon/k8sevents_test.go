package daemon

import (
	"testing"

	"github.com/oomtrace/oomtrace/enrich"
	"github.com/oomtrace/oomtrace/enrich/cgroups"
	"github.com/oomtrace/oomtrace/enrich/cri"
	"github.com/oomtrace/oomtrace/tracer"
)

// The Event says whose limit fired: the container's own cgroup, the pod's,
// or the node; and only kills in a pod the CRI named get one.
func TestKillInfoLimitScope(t *testing.T) {
	limit := int64(64 << 20)
	container := "/kubepods/burstable/pod0d3b4e2a-1111-2222-3333-444455556666/" + "ab"
	pod := "/kubepods/burstable/pod0d3b4e2a-1111-2222-3333-444455556666"
	k := tracer.Kill{Victim: tracer.Task{Process: tracer.Process{Pid: 7, Comm: "web"}}, Trigger: tracer.Process{Pid: 7, Comm: "web"},
		Scope: &tracer.Scope{Constraint: tracer.ConstraintMemcg}}
	named := &cri.Info{Namespace: "shop", Pod: "web-1", Name: "web", PodUID: "u"}
	for _, tc := range []struct {
		name  string
		hit   string
		scope tracer.Constraint
		want  string
	}{
		{"container", container, tracer.ConstraintMemcg, "container"},
		{"pod", pod, tracer.ConstraintMemcg, "pod"},
		{"systemd pod slice", "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod0d3b4e2a_1111.slice", tracer.ConstraintMemcg, "pod"},
		{"node", "", tracer.ConstraintNone, "node"},
	} {
		k.Scope.Constraint = tc.scope
		r := enrich.Result{VictimPath: container, CRI: named}
		if tc.hit != "" {
			r.Hit = &cgroups.Hit{Path: tc.hit, Limit: &limit}
		}
		info, ok := killInfo(k, r)
		if !ok || info.Limit != tc.want || info.Namespace != "shop" || info.Pod != "web-1" || info.Container != "web" || info.VictimPID != 7 {
			t.Errorf("%s: %+v %t, want limit %q", tc.name, info, ok, tc.want)
		}
	}
	if _, ok := killInfo(k, enrich.Result{}); ok {
		t.Error("a kill outside any pod the CRI named got an Event")
	}
}
