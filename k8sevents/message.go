package k8sevents

import (
	"fmt"
	"strconv"
	"strings"
	"unicode"
)

// maxMessage is events.k8s.io's limit on an Event's note (1 kB), kept for
// core Events too.
const maxMessage = 1024

// message is the Event's message for one kill, e.g.
//
//	oomtrace: process web[4242] of container app (rss 63.9 MiB) killed: container memory limit 64.0 MiB hit; allocation by web[4242]
func message(k *KillInfo) string {
	var b strings.Builder
	b.WriteString("oomtrace: process ")
	b.WriteString(task(k.VictimComm, k.VictimPID))
	if k.Container != "" {
		b.WriteString(" of container ")
		b.WriteString(k.Container)
	}
	if k.VictimRSS > 0 {
		fmt.Fprintf(&b, " (rss %s)", size(int64(min(k.VictimRSS, 1<<62))))
	}
	b.WriteString(" killed: ")
	b.WriteString(limit(k.Limit, k.LimitBytes))
	b.WriteString("; allocation by ")
	if k.TriggerComm == "" && k.TriggerPID == 0 {
		b.WriteString("an unknown process")
	} else {
		b.WriteString(task(k.TriggerComm, k.TriggerPID))
	}
	s := b.String()
	if len(s) > maxMessage {
		s = strings.ToValidUTF8(s[:maxMessage-3], "") + "..."
	}
	return s
}

// limit says which limit fired and its size.
func limit(scope string, bytes *int64) string {
	sz := "(size unknown)"
	if bytes != nil {
		sz = size(*bytes)
	}
	switch scope {
	case "node":
		if bytes == nil {
			return "node out of memory"
		}
		return "node memory " + sz + " exhausted"
	case "":
		if bytes == nil {
			return "memory limit unknown"
		}
		return "memory limit " + sz + " hit (whose unknown)"
	default:
		return printable(scope) + " memory limit " + sz + " hit"
	}
}

// task is comm[pid]; a comm the kernel let through with control
// characters or bad UTF-8 is quoted.
func task(comm string, pid uint32) string {
	if comm == "" {
		comm = "?"
	}
	return printable(comm) + "[" + strconv.FormatUint(uint64(pid), 10) + "]"
}

func printable(s string) string {
	for _, r := range s {
		if r == unicode.ReplacementChar || !unicode.IsPrint(r) || r == '"' {
			return strconv.QuoteToGraphic(s)
		}
	}
	return s
}

// size is bytes in binary units with one decimal: 64.0 MiB.
func size(n int64) string {
	if n < 1024 {
		return strconv.FormatInt(n, 10) + " B"
	}
	f := float64(n)
	for _, unit := range []string{"KiB", "MiB", "GiB", "TiB", "PiB"} {
		f /= 1024
		if f < 1024 || unit == "PiB" {
			return strconv.FormatFloat(f, 'f', 1, 64) + " " + unit
		}
	}
	panic("unreachable")
}
