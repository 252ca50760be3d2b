package main

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/oomtrace/oomtrace/internal/oomtest"
)

// A cgroup filling up past the threshold gets one oom_risk warning naming the
// process an OOM would kill, and no second one while it stays up there.
func TestBinaryWarnsOfOOMRisk(t *testing.T) {
	oomtest.RequireRoot(t)
	h := oomtest.MustHierarchy(t)
	bin := buildBinary(t)
	cg := oomtest.NewCgroup(t, h, nil, "risk", 64<<20)
	_, out, _ := startBinary(t, bin, "--risk-threshold", "50", "--risk-interval", "200ms")

	small, err := oomtest.Hog{Cgroup: cg, MB: 4, Comm: "risk-small", Hold: true}.Start(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer small.Stop()
	big, err := oomtest.Hog{Cgroup: cg, MB: 40, Comm: "risk-big", Hold: true}.Start(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer big.Stop()

	rel := strings.TrimPrefix(cg.Path, h.Root)
	var risks []map[string]any
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) && len(risks) == 0 {
		time.Sleep(100 * time.Millisecond)
		risks = risksFor(t, out, rel)
	}
	time.Sleep(time.Second) // five more scans: no repeat while above
	risks = risksFor(t, out, rel)
	if len(risks) != 1 {
		t.Fatalf("%d oom_risk events for %s, want 1", len(risks), rel)
	}
	victim, _ := risks[0]["likely_victim"].(map[string]any)
	if victim == nil || int(victim["pid"].(float64)) != big.Pid() || victim["comm"] != "risk-big" {
		t.Errorf("likely victim %v, want risk-big pid %d", victim, big.Pid())
	}
	if r := risks[0]["ratio"].(float64); r < 0.5 || r > 1 {
		t.Errorf("ratio %v", r)
	}
	if risks[0]["level"] != "warn" {
		t.Errorf("level %v", risks[0]["level"])
	}
}

func risksFor(t *testing.T, out *lines, path string) []map[string]any {
	var got []map[string]any
	for _, line := range out.snapshot() {
		var ev map[string]any
		if err := json.Unmarshal([]byte(line), &ev); err != nil {
			t.Fatalf("invalid JSON %q", line)
		}
		if ev["message"] != "oom_risk" {
			continue
		}
		if cg, _ := ev["cgroup"].(map[string]any); cg != nil && cg["path"] == path {
			got = append(got, ev)
		}
	}
	return got
}
