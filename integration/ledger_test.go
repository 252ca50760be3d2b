package integration

// Kills while no tracer ran: a daemon traces one kill and stops; three
// kills follow in the same scratch cgroup with no tracer; a daemon started
// on the same state directory reports the three as missed for that cgroup
// (the kernel's own counter says three) and backfills the three pids the
// kernel log names, without repeating the traced one. A state of another
// boot, or a corrupt one, gives one clear line and loses nothing.

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/oomtrace/oomtrace/daemon"
	"github.com/oomtrace/oomtrace/event"
	"github.com/oomtrace/oomtrace/internal/oomtest"
	"github.com/oomtrace/oomtrace/kernel/procfs"
	"github.com/oomtrace/oomtrace/ledger"
)

// ledgerLines are what a run with a state directory said about the time
// before it started, and its own kills.
type ledgerLines struct {
	missed  []event.Missed
	unknown []event.MissedUnknown
	kills   []event.Kill // every oom_kill line
}

func readLedgerLines(t *testing.T, out *lockedBuffer) ledgerLines {
	t.Helper()
	var l ledgerLines
	out.lines(t, "oom_missed", func(b []byte) {
		var m event.Missed
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatal(err)
		}
		l.missed = append(l.missed, m)
	})
	out.lines(t, "oom_missed_unknown", func(b []byte) {
		var m event.MissedUnknown
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatal(err)
		}
		l.unknown = append(l.unknown, m)
	})
	out.lines(t, "oom_kill", func(b []byte) {
		var k event.Kill
		if err := json.Unmarshal(b, &k); err != nil {
			t.Fatal(err)
		}
		l.kills = append(l.kills, k)
	})
	return l
}

// kmsgPids are the pids of the backfilled kills (source kmsg) among pids.
func (l ledgerLines) kmsgKills(pids []uint32) map[uint32]event.Kill {
	got := map[uint32]event.Kill{}
	for _, k := range l.kills {
		if k.Source == event.SourceKmsg && slices.Contains(pids, k.Victim.Pid) {
			got[k.Victim.Pid] = k
		}
	}
	return got
}

func requireKmsg(t *testing.T) {
	t.Helper()
	if _, err := oomtest.KernelKillReports(); err != nil {
		t.Skipf("the kernel log cannot be read here: %v", err)
	}
}

// killUntraced runs n hogs in cg one after the other, each OOM-killed, and
// returns their pids.
func killUntraced(t *testing.T, cg *oomtest.Cgroup, n int, comm string) []uint32 {
	t.Helper()
	var pids []uint32
	for range n {
		for _, p := range runHogs(t, oomtest.Hog{Cgroup: cg, MB: 256, Comm: comm}) {
			pids = append(pids, uint32(p.Pid()))
		}
	}
	return pids
}

func TestLedgerAcrossRestarts(t *testing.T) {
	oomtest.RequireRoot(t)
	requireKmsg(t)
	h := oomtest.MustHierarchy(t)
	cg := oomtest.NewCgroup(t, h, nil, "ledger", 64*mib)
	rel := "/" + strings.TrimPrefix(strings.TrimPrefix(cg.Path, h.Root), "/")
	dir := t.TempDir()
	withDir := func(c *daemon.Config) { c.StateDir = dir }

	out1, _, stop1 := startDaemonWith(t, withDir)
	traced := killUntraced(t, cg, 1, "ledger-traced")[0] // traced: a daemon runs
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if slices.ContainsFunc(readLedgerLines(t, out1).kills, func(k event.Kill) bool { return k.Victim.Pid == traced }) {
			break
		}
	}
	stop1()
	first := readLedgerLines(t, out1)
	if len(first.unknown) != 1 || first.unknown[0].Reason != event.MissedNoState || len(first.missed) != 0 {
		t.Errorf("first start: unknown %+v, missed %+v; want one oom_missed_unknown no_state", first.unknown, first.missed)
	}
	var tracedLine *event.Kill
	for _, k := range first.kills {
		if k.Victim.Pid == traced {
			tracedLine = &k
		}
	}
	if tracedLine == nil || tracedLine.Source != event.SourceBPF {
		t.Fatalf("the traced kill of %d: %+v, want an oom_kill line with source bpf", traced, tracedLine)
	}

	before, err := cg.OOMKills()
	if err != nil {
		t.Fatal(err)
	}
	down := killUntraced(t, cg, 3, "ledger-down") // no tracer runs
	after, err := cg.OOMKills()
	if err != nil {
		t.Fatal(err)
	}
	if after-before != 3 {
		t.Fatalf("the kernel counted %d kills in the cgroup, want 3", after-before)
	}

	out2, _, stop2 := startDaemonWith(t, withDir)
	stop2()
	second := readLedgerLines(t, out2)
	if len(second.unknown) != 0 {
		t.Errorf("restart: %+v", second.unknown)
	}
	var ours, machine *event.Missed
	for _, m := range second.missed {
		if m.Scope == "cgroup" && m.Cgroup != nil && m.Cgroup.Path == rel {
			ours = &m
		}
		if m.Scope == "machine" {
			machine = &m
		}
	}
	if ours == nil || ours.Kills != after-before || ours.Cgroup.ID != cg.ID || ours.Cgroup.New {
		t.Errorf("oom_missed for %s: %+v, want %d kills, id %d (all: %+v)", rel, ours, after-before, cg.ID, second.missed)
	}
	if machine == nil || machine.Kills < 3 {
		t.Errorf("machine oom_missed %+v, want at least 3", machine)
	}
	got := second.kmsgKills(append(slices.Clone(down), traced))
	for _, pid := range down {
		k, ok := got[pid]
		if !ok {
			t.Errorf("pid %d killed while down: no oom_kill line with source kmsg", pid)
			continue
		}
		if k.Victim.Comm != "ledger-down" || k.Attach != "kmsg" || k.Victim.Pages.Anon == 0 {
			t.Errorf("backfilled %d: comm %q attach %q pages %+v", pid, k.Victim.Comm, k.Attach, k.Victim.Pages)
		}
		if k.Victim.Cgroup.Path != nil && *k.Victim.Cgroup.Path != rel {
			t.Errorf("backfilled %d: cgroup %s, want %s", pid, *k.Victim.Cgroup.Path, rel)
		}
		path := "none (the summary line was rate-limited)"
		if k.Victim.Cgroup.Path != nil {
			path = *k.Victim.Cgroup.Path
		}
		t.Logf("backfilled %d at %s: anon %d pages, cgroup %s", pid, k.Time.Format(time.RFC3339Nano), k.Victim.Pages.Anon, path)
	}
	if _, ok := got[traced]; ok {
		t.Errorf("the traced kill of %d was backfilled again", traced)
	}
	for _, k := range second.kills {
		if k.Source == event.SourceBPF && slices.Contains(down, k.Victim.Pid) {
			t.Errorf("a kill made while down came as traced: %d", k.Victim.Pid)
		}
	}
	// Written for the record (the report's real lines).
	out2.lines(t, "oom_missed", func(b []byte) {
		if strings.Contains(string(b), rel) {
			t.Logf("%s", b)
		}
	})
	out2.lines(t, "oom_kill", func(b []byte) {
		if strings.Contains(string(b), `"pid":`+strconv.FormatUint(uint64(down[0]), 10)+`,`) {
			t.Logf("%s", b)
		}
	})
}

// A ledger of another boot, or a corrupt one: one oom_missed_unknown line,
// the kills since still backfilled from the kernel log, and a good state
// written at stop.
func TestLedgerBadState(t *testing.T) {
	oomtest.RequireRoot(t)
	requireKmsg(t)
	h := oomtest.MustHierarchy(t)
	for _, c := range []struct {
		reason string
		data   string
	}{
		{event.MissedOtherBoot, `{"version":1,"boot_id":"00000000-0000-0000-0000-000000000000","saved_at":"2026-01-01T00:00:00Z","vmstat_oom_kill":1,"cgroups":[],"kmsg_seq":1}`},
		{event.MissedCorrupt, `{"version":1,"boot_id":"efe1f4b3`},
	} {
		t.Run(c.reason, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, ledger.FileName), []byte(c.data), 0o600); err != nil {
				t.Fatal(err)
			}
			cg := oomtest.NewCgroup(t, h, nil, "ledger-"+strings.ReplaceAll(c.reason, "_", ""), 64*mib)
			down := killUntraced(t, cg, 1, "ledger-bad")
			out, _, stop := startDaemonWith(t, func(cfg *daemon.Config) { cfg.StateDir = dir })
			stop()
			l := readLedgerLines(t, out)
			if len(l.unknown) != 1 || l.unknown[0].Reason != c.reason || len(l.missed) != 0 {
				t.Errorf("unknown %+v missed %+v: want one oom_missed_unknown %s", l.unknown, l.missed, c.reason)
			}
			if _, ok := l.kmsgKills(down)[down[0]]; !ok {
				t.Errorf("the kill of %d before the start was not backfilled", down[0])
			}
			s, err := ledger.Load(dir)
			if err != nil {
				t.Fatalf("the state the run left: %v", err)
			}
			boot, _ := procfs.BootID()
			if s.BootID != boot || s.KmsgSeq == nil {
				t.Errorf("the state the run left: boot %s (want %s), kmsg seq %v", s.BootID, boot, s.KmsgSeq)
			}
			for _, u := range l.unknown {
				t.Logf("%+v", u)
			}
		})
	}
}

// A state directory that cannot be made: one state_dir_error warning, and
// the daemon traces on.
func TestLedgerStateDirUnwritable(t *testing.T) {
	oomtest.RequireRoot(t)
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	out, _, stop := startDaemonWith(t, func(cfg *daemon.Config) { cfg.StateDir = filepath.Join(file, "state") })
	stop()
	n := 0
	out.lines(t, "state_dir_error", func(b []byte) { n++; t.Logf("%s", b) })
	stopped := 0
	out.lines(t, "oomtrace_stopped", func([]byte) { stopped++ })
	if n != 1 || stopped != 1 {
		t.Errorf("%d state_dir_error lines, %d stopped lines: want one of each", n, stopped)
	}
}
