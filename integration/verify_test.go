package integration

// oomtrace verify's suite against this kernel: every applicable scenario must
// pass, and a wrong model must be caught.

import (
	"context"
	"os"
	"strings"
	"testing"

	"github.com/oomtrace/oomtrace/internal/oomtest"
	"github.com/oomtrace/oomtrace/kernel/badness"
	"github.com/oomtrace/oomtrace/tracer"
	"github.com/oomtrace/oomtrace/verify"
)

func verifyOptions() verify.Options {
	return verify.Options{Tracer: tracer.Config{
		KillHook: tracer.KillHook(os.Getenv("OOMTRACE_TEST_KILL_HOOK")),
		MarkHook: tracer.MarkHook(os.Getenv("OOMTRACE_TEST_MARK_HOOK")),
	}, GlobalOOM: inVM()} // a global OOM only in the disposable test VM
}

func inVM() bool { return os.Getenv("OOMTRACE_VM") == "1" }

func TestVerifySuite(t *testing.T) {
	oomtest.RequireRoot(t)
	h := oomtest.MustHierarchy(t)
	results, err := verify.Run(context.Background(), verifyOptions())
	if err != nil {
		t.Fatal(err)
	}
	// Where the machine allows a scenario, it must run, not be excused. The
	// kernel's score is known in every mode: from oom_kill_process() where
	// it is hooked, from its struct oom_control on the stack where not.
	mustApply := map[string]bool{
		"adj_minus_1000_never_chosen":         oomtest.CanLowerOOMScoreAdj(),
		"oom_group_kills_all_as_one":          h.V2,
		"kernel_score_equals_model":           true,
		"core_dumping_victim_counted":         corePatternIsRelative(t),
		"global_oom_group_kills_victim_twice": inVM() && h.V2,
	}
	seen := 0
	for _, r := range results {
		t.Logf("%-32s %-14s expected: %s | observed: %s %s", r.Scenario, r.Verdict, r.Expected, r.Observed, r.Reason)
		seen++
		if r.Verdict == verify.Fail {
			t.Errorf("%s failed: %s (numbers %v)", r.Scenario, r.Reason, r.Numbers)
		}
		if mustApply[r.Scenario] && r.Verdict != verify.Pass {
			t.Errorf("%s is %s on a machine that allows it", r.Scenario, r.Verdict)
		}
	}
	if seen != 11 {
		t.Errorf("%d results, want 11", seen)
	}
}

// corePatternIsRelative: cores land in the dumping process's directory,
// which verify's core-dump scenario needs.
func corePatternIsRelative(t *testing.T) bool {
	data, err := os.ReadFile("/proc/sys/kernel/core_pattern")
	if err != nil {
		t.Fatal(err)
	}
	p := strings.TrimSpace(string(data))
	return !strings.HasPrefix(p, "|") && !strings.Contains(p, "/")
}

// A model that gets the choice backwards must fail the suite.
func TestVerifyCatchesWrongModel(t *testing.T) {
	oomtest.RequireRoot(t)
	oomtest.MustHierarchy(t)
	opts := verifyOptions()
	opts.Only = []string{"largest_footprint_chosen"}
	opts.Model = func(in badness.Inputs) int64 { return -badness.Score(in) } // the smallest "wins"
	results, err := verify.Run(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	if len(results) == 0 || results[0].Scenario != "largest_footprint_chosen" || results[0].Verdict != verify.Fail {
		t.Fatalf("wrong model not caught: %+v", results)
	}
	if !verify.Failed(results) {
		t.Error("Failed() = false with a failing scenario")
	}
}
