package daemon

import (
	"os"
	"path"
	"strings"

	"github.com/oomtrace/oomtrace/enrich"
	"github.com/oomtrace/oomtrace/event"
	"github.com/oomtrace/oomtrace/k8sevents"
	"github.com/oomtrace/oomtrace/tracer"
	"github.com/rs/zerolog"
)

// newPoster is --k8s-events: a poster on the in-cluster API, or nil (with a
// warning, once) where there is none; the daemon traces on either way.
func newPoster(cfg Config, log zerolog.Logger) *k8sevents.Poster {
	if !cfg.K8sEvents {
		return nil
	}
	api, err := k8sevents.InCluster()
	if err != nil {
		event.Write(log, zerolog.WarnLevel, event.NewDiagnostic("k8s_events_error", err))
		return nil
	}
	return k8sevents.New(api, k8sevents.Options{
		NodeName: os.Getenv("NODE_NAME"),
		OnError: func(err error) {
			event.Write(log, zerolog.DebugLevel, event.NewDiagnostic("k8s_events_error", err))
		},
	})
}

// killInfo is what the Event of k says; ok is false outside a pod the CRI named.
func killInfo(k tracer.Kill, r enrich.Result) (k8sevents.KillInfo, bool) {
	c := r.CRI
	if c == nil || c.Namespace == "" || c.Pod == "" {
		return k8sevents.KillInfo{}, false
	}
	v := k.Victim
	info := k8sevents.KillInfo{
		Namespace: c.Namespace, Pod: c.Pod, PodUID: c.PodUID, Container: c.Name,
		VictimComm: v.Comm, VictimPID: v.Pid, VictimRSS: v.Pages.RSS() * uint64(os.Getpagesize()),
		TriggerComm: k.Trigger.Comm, TriggerPID: k.Trigger.Pid,
		Time: k.Time,
	}
	info.Limit, info.LimitBytes = limitScope(k, r)
	return info, true
}

// limitScope says whose limit fired: the container's own cgroup, the pod's
// (its parent, pod<uid>), or the node (a global OOM); "" when unknown.
func limitScope(k tracer.Kill, r enrich.Result) (string, *int64) {
	if k.Scope != nil && k.Scope.Constraint == tracer.ConstraintNone {
		return "node", nil
	}
	h := r.Hit
	if h == nil {
		return "", nil
	}
	switch {
	case h.Path == r.VictimPath:
		return "container", h.Limit
	case strings.HasPrefix(path.Base(h.Path), "pod") || strings.Contains(path.Base(h.Path), "-pod"):
		return "pod", h.Limit
	}
	return "", h.Limit
}
