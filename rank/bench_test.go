package rank

import (
	"fmt"
	"testing"

	"github.com/oomtrace/oomtrace/enrich/cgroups"
	"github.com/oomtrace/oomtrace/internal/oomtest"
)

// The cost of a snapshot and of a watcher tick on this host, plus n
// scratch limited cgroups (empty: the walk and the limit reads are what
// grows with the number of cgroups).
func BenchmarkRank(b *testing.B) {
	oomtest.RequireRoot(b)
	h := oomtest.MustHierarchy(b)
	src := Source{Hierarchy: cgroups.Hierarchy{Root: h.Root, V2: h.V2}, ProcRoot: "/proc"}
	for _, n := range []int{0, 500} {
		if n > 0 {
			parent := oomtest.NewCgroup(b, h, nil, "rankbench", 0)
			for i := range n {
				oomtest.NewCgroupExact(b, h, parent, fmt.Sprintf("c%d", i), 64<<20)
			}
		}
		b.Run(fmt.Sprintf("snapshot/+%d", n), func(b *testing.B) {
			for b.Loop() {
				if _, err := src.Snapshot(Options{Top: 3}); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(fmt.Sprintf("check/+%d", n), func(b *testing.B) {
			w := Watcher{Source: src, Detector: Detector{Threshold: 0.9}}
			for b.Loop() {
				if _, err := w.Check(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
