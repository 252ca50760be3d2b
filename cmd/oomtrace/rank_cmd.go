package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/oomtrace/oomtrace/rank"
	"golang.org/x/sys/unix"
)

type rankConfig struct {
	json, once bool
	interval   time.Duration
	top        int
	threshold  float64 // fraction of the effective limit
}

// rankMain runs `oomtrace rank`: per limited memory cgroup, how close it is
// to its limit and who the OOM killer would pick. Exit 0 (also on SIGINT),
// 1 when a snapshot fails, 2 on bad flags.
func rankMain(args []string, stdout io.Writer) int {
	var cfg rankConfig
	fs := flag.NewFlagSet("oomtrace rank", flag.ContinueOnError)
	fs.BoolVar(&cfg.json, "json", false, "one JSON document per refresh, one per line (with --once, a single one)")
	fs.BoolVar(&cfg.once, "once", false, "print one snapshot and exit")
	fs.DurationVar(&cfg.interval, "interval", 2*time.Second, "time between refreshes")
	fs.IntVar(&cfg.top, "top", 3, "candidates shown per cgroup, most likely victim first (0: all)")
	pct := fs.Float64("threshold", 90, "percent of the effective limit from which a cgroup is marked at risk")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	var bad error
	switch {
	case fs.NArg() > 0:
		bad = fmt.Errorf("unexpected arguments %q", fs.Args())
	case cfg.interval <= 0:
		bad = fmt.Errorf("--interval %v: want a positive duration", cfg.interval)
	case cfg.top < 0:
		bad = fmt.Errorf("--top %d: want 0 (all) or more", cfg.top)
	case *pct <= 0:
		bad = fmt.Errorf("--threshold %v: want a positive percentage", *pct)
	}
	if bad != nil {
		fmt.Fprintf(os.Stderr, "oomtrace rank: %v\n", bad)
		return 2
	}
	cfg.threshold = *pct / 100
	src, err := rank.HostSource()
	if err != nil {
		fmt.Fprintf(os.Stderr, "oomtrace rank: %v\n", err)
		return 1
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := rankLoop(ctx, src, cfg, stdout); err != nil {
		fmt.Fprintf(os.Stderr, "oomtrace rank: %v\n", err)
		return 1
	}
	return 0
}

// rankLoop prints a snapshot every interval until ctx is done.
func rankLoop(ctx context.Context, src rank.Source, cfg rankConfig, out io.Writer) error {
	// Clearing is for a person watching; in a pipe or a file it is noise.
	clear := !cfg.json && !cfg.once && rankIsTerminal(out)
	for {
		snap, err := src.Snapshot(rank.Options{Top: cfg.top, Threshold: cfg.threshold})
		if err != nil {
			return err
		}
		if clear {
			_, _ = io.WriteString(out, "\x1b[H\x1b[2J")
		}
		if cfg.json {
			err = json.NewEncoder(out).Encode(snap)
		} else {
			err = writeRankTable(out, snap)
		}
		if err != nil {
			return fmt.Errorf("writing the snapshot: %w", err)
		}
		if cfg.once {
			return nil
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(cfg.interval):
		}
	}
}

// writeRankTable prints one line per limited cgroup with its likely
// victim, then the next candidates on lines of their own. "!" marks a
// cgroup at risk; IN says where a candidate lives when it is in a
// descendant (an OOM weighs the whole subtree).
func writeRankTable(out io.Writer, s *rank.Snapshot) error {
	version := "v1"
	if s.V2 {
		version = "v2"
	}
	fmt.Fprintf(out, "%s  %s %s  %d cgroups, %d processes read in %.1f ms  at risk from %.0f%% of the effective limit\n\n",
		s.Time.Format("15:04:05"), version, s.Root, s.Walked, s.Read, s.ScanSeconds*1000, s.Threshold*100)
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, " \tCGROUP\tUSAGE\tWORKING SET\tLIMIT\tRATIO\tPID\tCOMM\tSCORE\tOOM_SCORE\tADJ\tIN")
	for _, c := range s.Cgroups {
		mark, path, limit, ratio := " ", c.Path, "-", "-"
		if c.AtRisk {
			mark = "!"
		}
		if c.Path == "/" {
			path = "/ (global OOM)"
		}
		if c.EffectiveLimit != nil {
			limit = rankBytes(c.EffectiveLimit)
			if c.EffectiveLimitPath != c.Path {
				limit += " @ " + c.EffectiveLimitPath // shadowed by an ancestor's
			}
		}
		if c.Ratio != nil {
			ratio = strconv.FormatFloat(*c.Ratio*100, 'f', 1, 64) + "%"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t", mark, path, rankBytes(c.Usage), rankBytes(c.WorkingSet), limit, ratio)
		if len(c.Candidates) == 0 {
			fmt.Fprintf(tw, "-\t-\t-\t-\t-\tno killable process (%d unkillable)\n", c.Unkillable)
		}
		for i, k := range c.Candidates {
			if i > 0 {
				fmt.Fprint(tw, " \t\t\t\t\t\t")
			}
			score := strconv.FormatInt(k.Score, 10)
			if i == 0 && c.Tie {
				score += " (tie)"
			}
			oomScore, in := "-", "."
			if k.OOMScore != nil {
				oomScore = strconv.FormatInt(*k.OOMScore, 10)
			}
			if k.Cgroup != c.Path {
				in = k.Cgroup
			}
			fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%d\t%s\n", k.Pid, k.Comm, score, oomScore, k.OOMScoreAdj, in)
		}
	}
	return tw.Flush()
}

func rankBytes(b *int64) string {
	if b == nil {
		return "-"
	}
	v, units := float64(*b), []string{"B", "KiB", "MiB", "GiB", "TiB"}
	i := 0
	for ; v >= 1024 && i < len(units)-1; i++ {
		v /= 1024
	}
	return strconv.FormatFloat(v, 'f', 1, 64) + units[i]
}

func rankIsTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}
