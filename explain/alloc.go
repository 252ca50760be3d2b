package explain

import (
	"fmt"
	"strings"

	"github.com/oomtrace/oomtrace/event"
)

// AllocSentence is one alloc_refused line in one sentence: which request
// of which process, and the rule that refused it with its numbers.
//
//	2026-12-01T12:00:00.123Z fork of redis-server[812] refused: strict overcommit, 6.1 GiB committed + 2.0 GiB > 7.5 GiB limit (×3 in 1 s)
func (s Style) AllocSentence(a event.AllocRefused) string {
	var b strings.Builder
	b.WriteString(a.Time.UTC().Format("2006-01-02T15:04:05.000Z07:00"))
	fmt.Fprintf(&b, " %s of %s refused: ", a.Syscall, s.paint("1", proc(a.Process.Comm, a.Process.Pid)))
	c := a.Commit
	req := s.mib(c.RequestBytes)
	switch a.Rule {
	case "heuristic":
		b.WriteString(s.paint("1;33", "heuristic overcommit"))
		if c.RAMBytes != nil && c.SwapBytes != nil {
			fmt.Fprintf(&b, ", %s > %s RAM + %s swap", req, s.mib(*c.RAMBytes), s.mib(*c.SwapBytes))
		}
	case "strict":
		b.WriteString(s.paint("1;33", "strict overcommit"))
		if c.CommittedBytes != nil && c.LimitBytes != nil {
			fmt.Fprintf(&b, ", %s committed + %s > %s limit", s.mib(*c.CommittedBytes), req, s.mib(*c.LimitBytes))
			if c.ReserveBytes != nil && *c.ReserveBytes > 0 {
				fmt.Fprintf(&b, " less %s reserve", s.mib(*c.ReserveBytes))
			}
		}
	case "rlimit_as":
		b.WriteString(s.paint("1;33", "RLIMIT_AS"))
		if c.RlimitAS != nil {
			fmt.Fprintf(&b, ", %s mapped + %s > %s", s.mib(c.TotalVMBytes), req, s.mib(*c.RlimitAS))
		}
	case "rlimit_data":
		b.WriteString(s.paint("1;33", "RLIMIT_DATA"))
		if c.RlimitData != nil {
			fmt.Fprintf(&b, ", %s data + %s > %s", s.mib(c.DataBytes), req, s.mib(*c.RlimitData))
		}
	default:
		fmt.Fprintf(&b, "%s (no overcommit or rlimit rule explains %s)", a.Rule, req)
	}
	if a.Cgroup.Path != nil {
		fmt.Fprintf(&b, "; cgroup %s", *a.Cgroup.Path)
	}
	if a.Repeats > 1 {
		fmt.Fprintf(&b, " (%d refusals)", a.Repeats)
	}
	return b.String()
}
