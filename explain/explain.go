// Package explain turns oom_kill events into what a person reads at a
// glance: one sentence per kill (the console format's line, and the first
// line of `oomtrace explain`), and why the kernel's score came out as it did.
package explain

import (
	"fmt"
	"os"
	"strings"

	"github.com/oomtrace/oomtrace/event"
	"github.com/oomtrace/oomtrace/kernel/badness"
)

// Style says how to write: Color adds ANSI colour (only for a terminal,
// and never when NO_COLOR is set: the caller decides). PageSize converts
// the kernel's pages to bytes; 0 is this machine's.
type Style struct {
	Color    bool
	PageSize uint64
}

func (s Style) pageSize() uint64 {
	if s.PageSize != 0 {
		return s.PageSize
	}
	return uint64(os.Getpagesize())
}

func (s Style) paint(code, text string) string {
	if !s.Color {
		return text
	}
	return "\x1b[" + code + "m" + text + "\x1b[0m"
}

// Sentence is one kill in one line: when, who died and how big it was,
// where it ran, which limit it hit, the kernel's score against the model,
// and which task's allocation set it off.
//
//	2026-12-01T12:00:00.123Z OOM kill: web-1[4242] rss 63.9 MiB, container web (docker); memcg limit 64.0 MiB of /docker/<id> hit; score 16680 = model; trigger web-1[4242] (itself)
func (s Style) Sentence(k event.Kill) string {
	var b strings.Builder
	b.WriteString(k.Time.UTC().Format("2006-01-02T15:04:05.000Z07:00"))
	b.WriteString(" ")
	b.WriteString(s.paint("1;31", "OOM kill:"))
	v := k.Victim
	fmt.Fprintf(&b, " %s rss %s", s.paint("1", proc(v.Comm, v.Pid)), s.bytes(v.Pages.Anon+v.Pages.File+v.Pages.Shmem))
	if v.Pages.Swap > 0 {
		fmt.Fprintf(&b, " + swap %s", s.bytes(v.Pages.Swap))
	}
	if k.Kills > 1 {
		fmt.Fprintf(&b, " (%d processes killed)", k.Kills)
	}
	fmt.Fprintf(&b, ", %s; %s; %s", where(k), s.limit(k), score(k.Score))
	if r := runnerUp(k); r != "" {
		b.WriteString("; " + r)
	}
	switch {
	case k.Trigger.Pid == 0:
		b.WriteString("; trigger unknown")
	case k.Trigger.Pid == v.Pid:
		fmt.Fprintf(&b, "; trigger %s (itself)", proc(k.Trigger.Comm, k.Trigger.Pid))
	default:
		fmt.Fprintf(&b, "; trigger %s", proc(k.Trigger.Comm, k.Trigger.Pid))
	}
	return b.String()
}

// runnerUp names the candidate that came second, and by how much it lost;
// "" without candidates.
func runnerUp(k event.Kill) string {
	if len(k.Candidates) < 2 {
		if k.CandidatesTotal != nil && *k.CandidatesTotal <= 1 && len(k.Candidates) == 1 {
			return "no other candidate"
		}
		return ""
	}
	r := k.Candidates[1]
	var sc string
	switch {
	case r.Unkillable:
		sc = "unkillable"
	case k.Score.Margin != nil:
		sc = fmt.Sprintf("score %d, %d behind", *r.Score, *k.Score.Margin)
	case r.Score != nil:
		sc = fmt.Sprintf("score %d", *r.Score)
	}
	from := ""
	if deref(k.CandidatesSource) == "model" {
		from = ", by the model"
	}
	return fmt.Sprintf("runner-up %s %s (of %d%s)", proc(r.Comm, r.Pid), sc, derefInt(k.CandidatesTotal), from)
}

func derefInt(p *int) int {
	if p == nil {
		return 0
	}
	return *p
}

func proc(comm string, pid uint32) string { return fmt.Sprintf("%s[%d]", comm, pid) }

// where names the victim's container, else its unit, else its cgroup.
func where(k event.Kill) string {
	c := k.Container
	runtime := deref(c.Runtime)
	switch {
	case c.Name != nil:
		return fmt.Sprintf("container %s (%s)", *c.Name, runtime)
	case c.ID != nil:
		id := *c.ID
		if len(id) > 12 {
			id = id[:12]
		}
		if k.K8s.PodUID != nil {
			return fmt.Sprintf("container %s (%s) of pod %s", id, runtime, *k.K8s.PodUID)
		}
		return fmt.Sprintf("container %s (%s)", id, runtime)
	case c.Unit != nil:
		return "unit " + *c.Unit
	case k.Victim.Cgroup.Path != nil:
		return "cgroup " + *k.Victim.Cgroup.Path
	}
	return "cgroup unknown"
}

// limit says what ran out: the memcg limit the kernel names (or the one
// inferred), or the machine for a global OOM.
func (s Style) limit(k event.Kill) string {
	o := k.OOM
	switch deref(o.Constraint) {
	case "memcg":
		m := o.Memcg
		if m.LimitBytes != nil && m.Path != nil {
			return fmt.Sprintf("memcg limit %s of %s hit", s.mib(uint64(*m.LimitBytes)), *m.Path)
		}
		return "a memcg limit hit"
	case "none":
		if o.TotalPages != nil {
			return fmt.Sprintf("global OOM (RAM + swap %s)", s.bytes(*o.TotalPages))
		}
		return "global OOM"
	case "":
		if p := k.Victim.Cgroup.EffectiveLimitPath; p != nil && k.Victim.Cgroup.EffectiveLimitBytes != nil {
			return fmt.Sprintf("limit %s of %s (inferred)", s.mib(uint64(*k.Victim.Cgroup.EffectiveLimitBytes)), *p)
		}
		return "scope unknown"
	default:
		return deref(o.Constraint) + " OOM"
	}
}

func score(sc event.Score) string {
	if sc.Kernel == nil {
		return "score unknown"
	}
	switch {
	case sc.Recomputed == nil || sc.Match == nil:
		return fmt.Sprintf("score %d", *sc.Kernel)
	case !*sc.Match:
		return fmt.Sprintf("score %d, model %d: MISMATCH", *sc.Kernel, *sc.Recomputed)
	case sc.SpecialCase != "":
		return fmt.Sprintf("score %d as the model expects (%s)", *sc.Kernel, sc.SpecialCase)
	}
	return fmt.Sprintf("score %d = model", *sc.Kernel)
}

func (s Style) bytes(pages uint64) string { return s.mib(pages * s.pageSize()) }

func (s Style) mib(b uint64) string {
	switch {
	case b >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(b)/(1<<30))
	case b >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20))
	}
	return fmt.Sprintf("%d KiB", b>>10)
}

func deref(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

// Why breaks the victim's score down as oom_badness() computes it: its
// pages, the oom_score_adj share of the OOM's size, and the sum, against
// the kernel's score, then the candidates it beat. Only the candidates
// when the kernel's scope is unknown; empty without either.
func (s Style) Why(k event.Kill) []string {
	o, v := k.OOM, k.Victim
	if o.TotalPages == nil || k.Score.Kernel == nil {
		if c := s.candidates(k); c != nil {
			return append([]string{fmt.Sprintf("why %s:", proc(v.Comm, v.Pid))}, c...)
		}
		return nil
	}
	rss := v.Pages.Anon + v.Pages.File + v.Pages.Shmem
	pages := rss + v.Pages.Swap + v.Pages.PgTables
	total := badness.Score(badness.Inputs{RSS: rss, Swap: v.Pages.Swap, PgTables: v.Pages.PgTables,
		OOMScoreAdj: int(v.OOMScoreAdj), TotalPages: *o.TotalPages})
	adj := total - int64(pages)
	lines := []string{
		fmt.Sprintf("why %s:", proc(v.Comm, v.Pid)),
		fmt.Sprintf("  pages: rss %d (anon %d + file %d + shmem %d) + swap %d + page tables %d = %d",
			rss, v.Pages.Anon, v.Pages.File, v.Pages.Shmem, v.Pages.Swap, v.Pages.PgTables, pages),
		fmt.Sprintf("  oom_score_adj %d x totalpages %d / 1000 = %d", v.OOMScoreAdj, *o.TotalPages, adj),
		fmt.Sprintf("  badness %d + %d = %d; the kernel scored %d", pages, adj, total, *k.Score.Kernel),
	}
	if k.Score.SpecialCase != "" {
		lines = append(lines, "  special case: "+k.Score.SpecialCase)
	}
	if k.Score.OOMScore != nil {
		lines = append(lines, fmt.Sprintf("  /proc oom_score (against the whole machine): %d", *k.Score.OOMScore))
	}
	return append(lines, s.candidates(k)...)
}

// candidates is the "why this victim" table: each task weighed, its
// pages, its adj's share and its score, the victim first.
func (s Style) candidates(k event.Kill) []string {
	if len(k.Candidates) == 0 {
		return nil
	}
	src := deref(k.CandidatesSource)
	head := fmt.Sprintf("  candidates (%d weighed, %d unkillable; scores from the %s", derefInt(k.CandidatesTotal), derefInt(k.CandidatesUnkillable), src)
	if r := deref(k.CandidatesModelReason); r != "" {
		head += ": " + r
	}
	lines := []string{head + "):"}
	for _, c := range k.Candidates {
		mark := " "
		if c.Victim {
			mark = "*"
		}
		sc := "unkillable"
		if c.Score != nil {
			sc = fmt.Sprintf("%d", *c.Score)
			if c.ModelScore != nil && *c.ModelScore != *c.Score {
				sc += fmt.Sprintf(" (model %d)", *c.ModelScore)
			}
		}
		pages := c.Pages.RSS + c.Pages.Swap + c.Pages.PgTables
		lines = append(lines, fmt.Sprintf("   %s %-22s pages %8d  adj %5d  score %s", mark, proc(c.Comm, c.Pid), pages, c.OOMScoreAdj, sc))
	}
	if k.Score.Margin != nil {
		lines = append(lines, fmt.Sprintf("  the victim beat the runner-up by %d points (%s)", *k.Score.Margin, s.bytes(uint64(max(*k.Score.Margin, 0)))))
	}
	return lines
}
