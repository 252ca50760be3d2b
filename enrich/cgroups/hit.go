package cgroups

// Values of Hit.Source.
const (
	SourceKernel   = "kernel"   // the kernel named the memcg (oom.memcg.id)
	SourceInferred = "inferred" // the kernel did not say: the smallest limit on the path
)

// Hit is the memory cgroup whose limit an OOM ran into.
type Hit struct {
	Path   string `json:"path"`
	Limit  *int64 `json:"limit"` // its memory limit; nil if unlimited or removed before it was read
	Source string `json:"source"`
}

// HitLimit says whose limit on the chain the OOM hit. oomMemcgPath is the
// resolved oom.memcg.id: the kernel knows, so that cgroup it is, even when
// an ancestor's limit is smaller (a v1 memsw limit, or usage elsewhere in a
// parent, can make another level fail first). When it is "" (mark-only
// mode, id 0, or the id did not resolve), the holder of the effective limit
// is inferred.
//
// It is false when the kernel's memcg is not on the chain (the victim's
// path is stale) or, inferring, nothing on the chain is limited. Do not
// call it for a global OOM (the kill hook attached and the memcg id 0): no
// cgroup limit was hit then.
func (l Limits) HitLimit(oomMemcgPath string) (Hit, bool) {
	if oomMemcgPath == "" {
		if l.Effective == nil {
			return Hit{}, false
		}
		return Hit{Path: l.EffectivePath, Limit: l.Effective, Source: SourceInferred}, true
	}
	for _, m := range l.Chain {
		if m.Path == oomMemcgPath {
			return Hit{Path: m.Path, Limit: m.Limit, Source: SourceKernel}, true
		}
	}
	return Hit{}, false
}
