package daemon

import (
	"os"
	"strings"

	"github.com/oomtrace/oomtrace/enrich"
	"github.com/oomtrace/oomtrace/enrich/cgroups"
	"github.com/oomtrace/oomtrace/enrich/cri"
	"github.com/oomtrace/oomtrace/enrich/docker"
	"github.com/oomtrace/oomtrace/enrich/history"
	"github.com/oomtrace/oomtrace/event"
	"github.com/oomtrace/oomtrace/kernel/cgroupfs"
	"github.com/rs/zerolog"
)

// criEndpoint is --cri-endpoint resolved: "" for off, or when auto finds
// no runtime socket.
func criEndpoint(mode string) string {
	switch mode {
	case "off":
		return ""
	case "auto", "":
		return cri.Discover()
	}
	return mode
}

// newEnricher sets up enrichment from what this machine has: memory cgroups
// when mounted, Docker metadata as --docker says, Kubernetes names over the
// CRI as --cri-endpoint says.
func newEnricher(cfg Config, log zerolog.Logger) (*enrich.Enricher, *docker.Cache, *cri.Cache) {
	var h *cgroups.Hierarchy
	if found, err := cgroups.FindMemoryHierarchy(); err == nil {
		h = &found
	} else {
		event.Write(log, zerolog.WarnLevel, event.NewDiagnostic("no_memory_cgroups", err))
	}
	var cache *docker.Cache
	if dockerWanted(cfg.Docker) {
		cache = docker.NewCache(docker.Options{
			OnError: func(err error) {
				event.Write(log, zerolog.DebugLevel, event.NewDiagnostic("docker_error", err))
			},
		})
	}
	var criCache *cri.Cache
	if ep := criEndpoint(cfg.CRI); ep != "" {
		criCache = cri.NewCache(cri.Options{
			Endpoint: ep,
			OnError: func(err error) {
				event.Write(log, zerolog.DebugLevel, event.NewDiagnostic("cri_error", err))
			},
		})
	}
	e := enrich.New(h, cache)
	if h != nil && cfg.HistoryLevel > 0 && cfg.RiskThreshold > 0 {
		e.UseHistory(&history.Recorder{Hierarchy: cgroupfs.Hierarchy(*h)})
	}
	e.UseCRI(criCache)
	switch n := cfg.Tracer.Candidates; {
	case n < 0:
		e.KeepCandidates(0)
	case n > 0:
		e.KeepCandidates(n)
	}
	if err := e.GFPNamesError(); err != nil {
		event.Write(log, zerolog.WarnLevel, event.NewDiagnostic("gfp_names_unavailable", err))
	}
	if err := e.Prime(); err != nil {
		event.Write(log, zerolog.WarnLevel, event.NewDiagnostic("cgroup_scan_error", err))
	}
	return e, cache, criCache
}

// dockerWanted: "on", or "auto" when DOCKER_HOST is set or the default
// socket exists at startup. Auto does not keep retrying a Docker that is not
// installed: that would wake the daemon up forever for nothing.
func dockerWanted(mode string) bool {
	switch mode {
	case "on":
		return true
	case "off":
		return false
	}
	if strings.TrimSpace(os.Getenv("DOCKER_HOST")) != "" {
		return true
	}
	_, err := os.Stat("/var/run/docker.sock")
	return err == nil
}
