package docker

import (
	"maps"
	"time"

	"github.com/oomtrace/oomtrace/enrich/retain"
)

// store holds the containers Docker has, and for a while the ones it
// removed: an OOM-killed `docker run --rm` container is destroyed a moment
// after the kill, often before its event is enriched.
type store = retain.Store[Info]

func newStore(retention time.Duration, maxGone int) *store {
	return retain.New(retention, maxGone, func(i Info) string { return i.ID }, clone)
}

// clone gives callers their own label map: the cache's stays unshared.
func clone(info Info) Info {
	info.Labels = maps.Clone(info.Labels)
	return info
}
