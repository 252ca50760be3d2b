package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/oomtrace/oomtrace/internal/oomtest"
	"github.com/oomtrace/oomtrace/rank"
)

func TestRankFlags(t *testing.T) {
	for _, args := range [][]string{{"--bogus"}, {"extra"}, {"--top", "-1"}, {"--threshold", "0"}, {"--interval", "0s"}} {
		if code := rankMain(args, io.Discard); code != 2 {
			t.Errorf("rank %q: exit %d, want 2", args, code)
		}
	}
	if code := rankMain([]string{"-h"}, io.Discard); code != 0 {
		t.Errorf("rank -h: exit %d, want 0", code)
	}
}

func TestRankTable(t *testing.T) {
	i64 := func(v int64) *int64 { return &v }
	f64 := func(v float64) *float64 { return &v }
	s := &rank.Snapshot{Time: time.Now(), Root: "/sys/fs/cgroup/memory", Threshold: 0.9, Cgroups: []rank.Cgroup{
		{Path: "/parent", Usage: i64(95 << 20), WorkingSet: i64(94 << 20), Limit: i64(100 << 20), EffectiveLimit: i64(100 << 20),
			EffectiveLimitPath: "/parent", Ratio: f64(0.94), AtRisk: true, Tie: true, Candidates: []rank.Candidate{
				{Pid: 11, Comm: "free", Cgroup: "/parent/free", Score: 12000, OOMScore: i64(668)},
				{Pid: 12, Comm: "other", Cgroup: "/parent", Score: 12000, OOMScore: i64(668)}}},
		{Path: "/parent/shadowed", Usage: i64(30 << 20), WorkingSet: i64(30 << 20), Limit: i64(1 << 30), EffectiveLimit: i64(100 << 20),
			EffectiveLimitPath: "/parent", Ratio: f64(0.3), Unkillable: 1},
		{Path: "/", Candidates: []rank.Candidate{{Pid: 14, Comm: "out", Cgroup: "/x", Score: 20000}}},
	}}
	var b bytes.Buffer
	if err := writeRankTable(&b, s); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	lines := strings.Split(strings.TrimSpace(out), "\n")
	want := []string{
		"!  /parent ", "94.0MiB", "100.0MiB ", "94.0%", "11 ", "12000 (tie)", "/parent/free", // victim in a descendant
		"100.0MiB @ /parent", "no killable process (1 unkillable)", // shadowed limit
		"/ (global OOM)", "14 ", "out",
	}
	for _, w := range want {
		if !strings.Contains(out, w) {
			t.Errorf("table lacks %q", w)
		}
	}
	if len(lines) != 7 || strings.Join(strings.Fields(lines[4]), " ") != "12 other 12000 668 0 ." {
		t.Errorf("want a header, a blank, the column names and 4 rows (the second candidate on its own line), got %d lines", len(lines))
	}
}

// The loop refreshes until its context ends, and exits cleanly then (the
// SIGINT path); output to a non-terminal is never cleared.
func TestRankLoopJSON(t *testing.T) {
	src, err := rank.HostSource()
	if err != nil {
		t.Skipf("needs a memory cgroup hierarchy: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	var b bytes.Buffer
	if err := rankLoop(ctx, src, rankConfig{json: true, interval: 20 * time.Millisecond, top: 2, threshold: 0.9}, &b); err != nil {
		t.Fatal(err)
	}
	n := 0
	for sc := bufio.NewScanner(&b); sc.Scan(); n++ {
		var s rank.Snapshot
		if err := json.Unmarshal(sc.Bytes(), &s); err != nil || len(s.Cgroups) == 0 || s.Cgroups[len(s.Cgroups)-1].Path != "/" {
			t.Fatalf("document %d: %v %s", n, err, sc.Bytes())
		}
	}
	if n < 2 || bytes.Contains(b.Bytes(), []byte("\x1b[")) {
		t.Errorf("%d documents, want several, and no escape sequences", n)
	}
}

// `oomtrace rank --once --json` on the host names a holding hog in a
// scratch cgroup as its likely victim.
func TestRankOnceHost(t *testing.T) {
	oomtest.RequireRoot(t)
	h := oomtest.MustHierarchy(t)
	cg := oomtest.NewCgroup(t, h, nil, "rankcmd", 64<<20)
	hog, err := oomtest.Hog{Cgroup: cg, MB: 16, Hold: true}.Start(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(hog.Stop)
	f, err := os.CreateTemp(t.TempDir(), "out")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if code := rankMain([]string{"--once", "--json", "--top", "1"}, f); code != 0 {
		t.Fatalf("exit %d", code)
	}
	data, _ := os.ReadFile(f.Name())
	var s rank.Snapshot
	if err := json.Unmarshal(data, &s); err != nil {
		t.Fatalf("%v: %s", err, data)
	}
	path := strings.TrimPrefix(cg.Path, h.Root)
	for _, c := range s.Cgroups {
		if c.Path == path {
			if len(c.Candidates) != 1 || c.Candidates[0].Pid != hog.Pid() || c.Ratio == nil || *c.Ratio <= 0 {
				t.Errorf("row %+v: want the hog %d as the only candidate shown and a ratio", c, hog.Pid())
			}
			return
		}
	}
	t.Errorf("no row for %s in %s", path, data)
}
