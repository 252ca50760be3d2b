package metrics

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

// A pod's series counts its kills, and goes once the pod is gone and idle
// for podIdle; a pod still there keeps its series however idle.
func TestPodSeriesGoAfterThePod(t *testing.T) {
	m := New(10, nil)
	now := time.Unix(1000, 0)
	m.pods.now = func() time.Time { return now }
	alive := map[string]bool{"u1": true, "u2": true}
	m.PodAlive(func(uid string) bool { return alive[uid] })
	m.PodKill(Pod{Namespace: "shop", Name: "web-1", Container: "web", Runtime: "containerd", UID: "u1"}, 1)
	m.PodKill(Pod{Namespace: "shop", Name: "web-1", Container: "web", Runtime: "containerd", UID: "u1"}, 2)
	m.PodKill(Pod{Namespace: "shop", Name: "db-0", Container: "db", Runtime: "containerd", UID: "u2"}, 1)
	want := `
# HELP oomtrace_container_oom_kills_total OOM kills by Kubernetes namespace, pod and container (named over the CRI) and runtime; a series goes some minutes after its pod.
# TYPE oomtrace_container_oom_kills_total counter
oomtrace_container_oom_kills_total{container="db",namespace="shop",pod="db-0",runtime="containerd"} 1
oomtrace_container_oom_kills_total{container="web",namespace="shop",pod="web-1",runtime="containerd"} 3
`
	if err := testutil.GatherAndCompare(m.Registry, strings.NewReader(want), "oomtrace_container_oom_kills_total"); err != nil {
		t.Fatal(err)
	}
	// web-1 is deleted; db-0 lives on. Four minutes: both stay.
	alive["u1"] = false
	now = now.Add(4 * time.Minute)
	if n := testutil.CollectAndCount(m.pods); n != 2 {
		t.Errorf("%d series 4 minutes after the last kill, want 2", n)
	}
	now = now.Add(time.Minute)
	if n := testutil.CollectAndCount(m.pods); n != 1 {
		t.Errorf("%d series once web-1 was gone and idle 5 minutes, want db-0's alone", n)
	}
	now = now.Add(time.Hour)
	if n := testutil.CollectAndCount(m.pods); n != 1 {
		t.Errorf("db-0, still there, lost its series after an idle hour: %d", n)
	}
}
