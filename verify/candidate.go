package verify

import (
	"github.com/oomtrace/oomtrace/kernel/badness"
	"github.com/oomtrace/oomtrace/kernel/procfs"
)

// candidate is a process the kernel may choose, as read from /proc just
// before the OOM: the model's inputs and the kernel's own oom_score.
type candidate struct {
	Name     string `json:"name"`
	Pid      int    `json:"pid"`
	Adj      int    `json:"oom_score_adj"`
	RSS      uint64 `json:"rss_pages"`
	Swap     uint64 `json:"swap_pages"`
	PgTables uint64 `json:"pgtables_pages"`
	Model    int64  `json:"model_score"`    // badness against the scenario's totalpages
	OOMScore int64  `json:"proc_oom_score"` // /proc/PID/oom_score, machine-wide scale
}

// readCandidate reads pid's counters from /proc/PID/status (kB) and scores
// them with the model against totalPages.
func readCandidate(name string, pid int, totalPages uint64, model Model) (candidate, error) {
	c := candidate{Name: name, Pid: pid}
	st, err := procfs.ReadStatus(pid)
	if err != nil {
		return c, err
	}
	c.RSS, c.Swap, c.PgTables = st.Pages.RSS(), st.Pages.Swap, st.Pages.PgTables
	adj, err := procfs.ReadNumber(pid, "oom_score_adj")
	if err != nil {
		return c, err
	}
	c.Adj = int(adj)
	if c.OOMScore, err = procfs.ReadNumber(pid, "oom_score"); err != nil {
		return c, err
	}
	c.Model = model(badness.Inputs{RSS: c.RSS, Swap: c.Swap, PgTables: c.PgTables, OOMScoreAdj: c.Adj, TotalPages: totalPages})
	return c, nil
}

// predict returns the candidate the model says the kernel will choose: the
// highest score; unkillable ones never.
func predict(cs []candidate) (candidate, bool) {
	var best candidate
	found := false
	for _, c := range cs {
		if c.Model == badness.Unkillable {
			continue
		}
		if !found || c.Model > best.Model {
			best, found = c, true
		}
	}
	return best, found
}
