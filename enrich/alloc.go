package enrich

import (
	"context"
	"fmt"

	"github.com/oomtrace/oomtrace/enrich/cgroups"
	"github.com/oomtrace/oomtrace/enrich/cri"
	"github.com/oomtrace/oomtrace/enrich/docker"
	"github.com/oomtrace/oomtrace/tracer"
)

// AllocResult is where a refused request's process lives, resolved as a
// kill's victim is: its memory cgroup's path and the container and pod.
type AllocResult struct {
	CgroupPath string // "" when unresolved
	Container  cgroups.Container
	Docker     *docker.Info
	CRI        *cri.Info
	Errors     map[string]string // source -> what went wrong
}

// EnrichAlloc never fails: what it cannot find is named in Errors. It waits
// for Docker or the CRI at most their caches' bound, as Enrich does.
func (e *Enricher) EnrichAlloc(ctx context.Context, a tracer.AllocRefused) AllocResult {
	r := AllocResult{Errors: map[string]string{}}
	fail := func(source string, err error) {
		r.Errors[source] = err.Error()
		e.Stats.Errors.Add(1)
	}
	if e.resolver == nil {
		return r
	}
	path, ok := e.resolver.Path(a.Task.CgroupID)
	if !ok {
		fail("cgroup", fmt.Errorf("cgroup id %d not found in %s", a.Task.CgroupID, e.hierarchy.Root))
		return r
	}
	r.CgroupPath = path
	r.Container = e.containers.parse(path)
	if r.Container.Runtime == "docker" && e.docker != nil {
		if info, err := e.docker.Lookup(ctx, r.Container.ID); err != nil {
			fail("docker", err)
		} else {
			r.Docker = &info
		}
	}
	if criRuntimes[r.Container.Runtime] && e.cri != nil {
		if info, err := e.cri.Lookup(ctx, r.Container.ID); err != nil {
			fail("cri", err)
		} else {
			r.CRI = &info
		}
	}
	return r
}
