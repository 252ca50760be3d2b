package rank

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/oomtrace/oomtrace/kernel/badness"
	"github.com/oomtrace/oomtrace/kernel/cgroupfs"
	nodectx "github.com/oomtrace/oomtrace/kernel/node"
	"golang.org/x/sys/unix"
)

// Snapshot is every limited cgroup's distance to its limit and likely
// victim at one moment.
type Snapshot struct {
	Time         time.Time `json:"time"`
	Root         string    `json:"root"` // the memory hierarchy's mount point
	V2           bool      `json:"v2"`
	MachinePages uint64    `json:"machine_pages"` // RAM + swap: a global OOM's totalpages, oom_score's scale
	Threshold    float64   `json:"threshold"`     // ratio from which a cgroup is at_risk; 0: none marked
	ScanSeconds  float64   `json:"scan_seconds"`  // what taking the snapshot cost
	Walked       int       `json:"cgroups_walked"`
	Read         int       `json:"processes_read"`
	// Cgroups holds every cgroup with its own limit and processes in its
	// subtree, nearest to its effective limit first, then the root "/",
	// which stands for a global OOM.
	Cgroups []Cgroup `json:"cgroups"`
}

// Cgroup is one limited cgroup and the processes an OOM there would weigh.
// Byte counts are null when unknown or unlimited.
type Cgroup struct {
	Path       string `json:"path"` // relative to the hierarchy's root
	ID         uint64 `json:"id"`   // cgroup id, as in oom_kill events' victim.cgroup.id
	Usage      *int64 `json:"usage_bytes"`
	WorkingSet *int64 `json:"working_set_bytes"` // usage minus inactive file pages, which reclaim drops before any OOM
	Limit      *int64 `json:"limit_bytes"`       // its own memory limit
	// EffectiveLimit is the smallest limit on the path to the root, held
	// by EffectiveLimitPath: the cgroup itself, or an ancestor when that
	// one's limit shadows this one's.
	EffectiveLimit     *int64 `json:"effective_limit_bytes"`
	EffectiveLimitPath string `json:"effective_limit_path,omitempty"`
	// Ratio is WorkingSet / EffectiveLimit: 1 is the OOM. Raw usage would
	// put every cgroup with a warm page cache at 100%.
	Ratio  *float64 `json:"ratio"`
	AtRisk bool     `json:"at_risk"`
	// TotalPages is what the scores are computed against: the effective
	// limit's holder's limit plus the swap it may use (mem_cgroup_get_max),
	// or RAM + swap for the root.
	TotalPages uint64 `json:"totalpages"`
	Processes  int    `json:"processes"`  // killable processes in the subtree
	Unkillable int    `json:"unkillable"` // oom_score_adj -1000 in the subtree: never chosen
	// Tie: the first two candidates score the same, and the kernel's pick
	// between them depends on an order /proc does not show (see rankProcs).
	Tie bool `json:"tie,omitempty"`
	// Candidates are the subtree's processes, most likely victim first.
	Candidates []Candidate `json:"candidates"`
}

// Candidate is one process an OOM would weigh.
type Candidate struct {
	Pid         int    `json:"pid"`
	Comm        string `json:"comm"`
	Cgroup      string `json:"cgroup"` // where it lives: this cgroup or a descendant
	OOMScoreAdj int    `json:"oom_score_adj"`
	Pages       Pages  `json:"pages"`
	// Score is the model's oom_badness() for an OOM in this cgroup.
	Score int64 `json:"score"`
	// OOMScore is /proc/PID/oom_score as the kernel reports it, on the
	// global scale (null when unreadable); ModelOOMScore is the model's
	// value of it, for comparison.
	OOMScore      *int64 `json:"oom_score"`
	ModelOOMScore int64  `json:"model_oom_score"`
}

// Options shape a snapshot.
type Options struct {
	Top       int     // candidates per cgroup; 0: all
	Threshold float64 // ratio from which a cgroup is marked at risk; 0: none
}

// Snapshot walks the hierarchy once and reads every process in it.
func (s Source) Snapshot(opt Options) (*Snapshot, error) {
	start := time.Now()
	m, err := s.machine()
	if err != nil {
		return nil, err
	}
	r := newReader()
	nodes, err := s.walk(r)
	if err != nil {
		return nil, err
	}
	// Processes in walk order; first[i] is node i's first, so a subtree's
	// are procs[first[i]:first[nodes[i].end]].
	var procs []proc
	first := make([]int, len(nodes)+1)
	for i, n := range nodes {
		first[i] = len(procs)
		if procs, err = r.readProcs(s.ProcRoot, s.dir(n.path), i, procs); err != nil && !errors.Is(err, errRemoved) {
			return nil, fmt.Errorf("reading processes of %s: %w", n.path, err)
		}
	}
	first[len(nodes)] = len(procs)

	snap := &Snapshot{Time: start, Root: s.Hierarchy.Root, V2: s.Hierarchy.V2, MachinePages: m.pages,
		Threshold: opt.Threshold, Walked: len(nodes), Read: len(procs), Cgroups: []Cgroup{}}
	for i, n := range nodes {
		sub := procs[first[i]:first[n.end]]
		if len(sub) == 0 || (i > 0 && n.limit < 0) {
			continue
		}
		c, err := s.cgroup(r, nodes, i, sub, m, opt)
		if errors.Is(err, errRemoved) {
			continue
		}
		if err != nil {
			return nil, err
		}
		snap.Cgroups = append(snap.Cgroups, c)
	}
	slices.SortStableFunc(snap.Cgroups, func(a, b Cgroup) int {
		if a.Ratio == nil || b.Ratio == nil {
			return cmp.Compare(btoi(a.Ratio == nil), btoi(b.Ratio == nil))
		}
		return cmp.Or(cmp.Compare(*b.Ratio, *a.Ratio), cmp.Compare(a.Path, b.Path))
	})
	snap.ScanSeconds = time.Since(start).Seconds()
	return snap, nil
}

func (s Source) cgroup(r *reader, nodes []node, i int, sub []proc, m machine, opt Options) (Cgroup, error) {
	n := nodes[i]
	c := Cgroup{Path: n.path, ID: n.id, Limit: opt64(n.limit), EffectiveLimit: opt64(n.eff), TotalPages: m.pages}
	ws, err := s.workingSet(r, n)
	if err != nil {
		return c, err
	}
	c.Usage, c.WorkingSet = opt64(n.usage), opt64(ws)
	if n.effAt >= 0 {
		c.EffectiveLimitPath = nodes[n.effAt].path
		if c.TotalPages, err = s.totalPages(r, nodes[n.effAt], m); err != nil {
			return c, err
		}
		if ws >= 0 {
			ratio := float64(ws) / float64(max(n.eff, 1))
			c.Ratio, c.AtRisk = &ratio, opt.Threshold > 0 && ratio >= opt.Threshold
		}
	}
	c.Candidates, c.Processes, c.Unkillable, c.Tie = rankProcs(sub, nodes, c.TotalPages, m.pages, opt.Top)
	return c, nil
}

// rankProcs scores procs for an OOM whose scope is totalPages and returns
// the top of them, best first.
//
// On equal scores the kernel keeps the LAST task its scan meets
// (oom_evaluate_task skips a task only when points < chosen_points), so the
// later-read process ranks first. The walk is pre-order like
// mem_cgroup_scan_tasks, but the kernel visits sibling cgroups in creation
// order and tasks in the order they joined, while directories come in
// kernfs order and v1's cgroup.procs is sorted by pid: a tie is flagged.
func rankProcs(procs []proc, nodes []node, totalPages, machinePages uint64, top int) (cands []Candidate, killable, unkillable int, tie bool) {
	type scored struct {
		i     int
		score int64
	}
	s := make([]scored, 0, len(procs))
	for i, p := range procs {
		if sc := p.score(totalPages); sc != badness.Unkillable {
			s = append(s, scored{i, sc})
		} else {
			unkillable++
		}
	}
	slices.SortFunc(s, func(a, b scored) int { return cmp.Or(cmp.Compare(b.score, a.score), cmp.Compare(b.i, a.i)) })
	tie = len(s) > 1 && s[0].score == s[1].score
	killable = len(s)
	if top > 0 && len(s) > top {
		s = s[:top]
	}
	cands = make([]Candidate, 0, len(s))
	for _, x := range s {
		p := procs[x.i]
		c := Candidate{Pid: p.pid, Comm: p.comm, Cgroup: nodes[p.node].path, OOMScoreAdj: p.adj, Pages: p.pages,
			Score: x.score, ModelOOMScore: badness.ProcOOMScore(p.score(machinePages), machinePages)}
		if p.oomScore >= 0 {
			c.OOMScore = &p.oomScore
		}
		cands = append(cands, c)
	}
	return cands, killable, unkillable, tie
}

func (p proc) score(totalPages uint64) int64 {
	return badness.Score(badness.Inputs{RSS: p.pages.RSS(), Swap: p.pages.Swap, PgTables: p.pages.PgTables,
		OOMScoreAdj: p.adj, TotalPages: totalPages})
}

// workingSet is a cgroup's usage minus its inactive file pages, -1 when
// its usage is unknown (v2's root has no memory.current).
func (s Source) workingSet(r *reader, n node) (int64, error) {
	if n.usage < 0 {
		return -1, nil
	}
	f := s.Hierarchy.Files()
	data, err := r.read(s.dir(n.path) + "/" + f.Stat)
	if err != nil {
		return 0, err
	}
	inactive, _ := keyed(data, f.InactiveFile)
	return max(n.usage-inactive, 0), nil
}

// totalPages is mem_cgroup_get_max() of cgroup h (see cgroupfs.MemcgMax).
func (s Source) totalPages(r *reader, h node, m machine) (uint64, error) {
	mx := cgroupfs.MemcgMax{Limit: h.limit}
	if m.swapBytes == 0 {
		// No swap to allow, whatever the files say: spare the reads.
		return mx.TotalPages(m.swappiness, 0, pageSize), nil
	}
	f := s.Hierarchy.Files()
	for _, file := range [...]struct {
		name string
		dst  **int64
	}{{f.SwapLimit, &mx.SwapLimit}, {f.MemswLimit, &mx.MemswLimit}, {f.Swappiness, &mx.Swappiness}} {
		if file.name == "" {
			continue // not this version's
		}
		v, err := r.intAt(unix.AT_FDCWD, s.dir(h.path)+"/"+file.name)
		if err != nil {
			return 0, err
		}
		*file.dst = opt64(v)
	}
	return mx.TotalPages(m.swappiness, m.swapBytes, pageSize), nil
}

type machine struct {
	pages, swapBytes uint64
	swappiness       int // vm.swappiness
}

func (s Source) machine() (machine, error) {
	c, err := nodectx.Read(s.ProcRoot)
	if c.MemTotalBytes == 0 {
		return machine{}, fmt.Errorf("reading RAM and swap: %w", err)
	}
	// Otherwise err is about sysctls, which are not needed here.
	return machine{c.MachinePages(pageSize), c.SwapTotalBytes, c.Swappiness}, nil
}

func opt64(v int64) *int64 {
	if v < 0 {
		return nil
	}
	return &v
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}
