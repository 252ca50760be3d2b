package daemon

import (
	"os"
	"strings"
	"time"

	"github.com/oomtrace/oomtrace/enrich"
	"github.com/oomtrace/oomtrace/enrich/cgroups"
	"github.com/oomtrace/oomtrace/enrich/docker"
	"github.com/rs/zerolog"
)

// newEnricher sets up enrichment from what this machine has: memory cgroups
// when mounted, Docker metadata as --docker says.
func newEnricher(cfg Config, log zerolog.Logger) (*enrich.Enricher, *docker.Cache) {
	var h *cgroups.Hierarchy
	if found, err := cgroups.FindMemoryHierarchy(); err == nil {
		h = &found
	} else {
		log.Warn().Err(err).Time("time", time.Now()).Msg("no_memory_cgroups")
	}
	var cache *docker.Cache
	if dockerWanted(cfg.Docker) {
		cache = docker.NewCache(docker.Options{
			OnError: func(err error) {
				log.Debug().Err(err).Time("time", time.Now()).Msg("docker_error")
			},
		})
	}
	e := enrich.New(h, cache)
	if err := e.Prime(); err != nil {
		log.Warn().Err(err).Time("time", time.Now()).Msg("cgroup_scan_error")
	}
	return e, cache
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
