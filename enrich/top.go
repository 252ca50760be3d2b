package enrich

import (
	"cmp"
	"errors"
	"slices"
	"time"

	"github.com/oomtrace/oomtrace/tracer"
)

// topLen is how many of the OOM scope's largest processes a kill lists.
const topLen = 5

// TopProcess is one of the OOM scope's largest processes at the kill.
type TopProcess struct {
	Pid      uint32
	Comm     string
	RSSBytes uint64
}

var errNoHierarchy = errors.New("no memory cgroups to read the OOM's processes from")

// top lists the OOM scope's largest processes by resident memory, the
// largest first: the victim from its counters at the kill, the others as
// /proc has them just after it (the read the model's candidate list makes,
// shared with it). Other victims of the last 30 s, the decision's group
// among them, are left out: their memory is being freed.
func (e *Enricher) top(k tracer.Kill, path string) ([]TopProcess, error) {
	now := time.Now()
	procs, err := e.scopeProcesses(path, now)
	if err != nil {
		return nil, err
	}
	v := k.Victim
	list := []TopProcess{{Pid: v.Pid, Comm: v.Comm, RSSBytes: v.Pages.RSS() * e.pageSize}}
	for _, p := range procs {
		if uint32(p.Pid) == v.Pid || e.victims.has(uint32(p.Pid), now) || !alive(p.Pid) {
			continue
		}
		list = append(list, TopProcess{Pid: uint32(p.Pid), Comm: tracer.EscapeComm([]byte(p.Comm)), RSSBytes: p.Pages.RSS() * e.pageSize})
	}
	slices.SortStableFunc(list, func(a, b TopProcess) int {
		return cmp.Or(cmp.Compare(b.RSSBytes, a.RSSBytes), cmp.Compare(a.Pid, b.Pid))
	})
	return list[:min(len(list), topLen)], nil
}
