package main

import (
	"bytes"
	"os"
	"strings"
	"testing"
)

// Lines recorded from a real run on this project's host (a mark_victim-mode
// kill in a 64 MiB cgroup, between the started and stopped lines) explain
// as recorded.explain says.
func TestExplainRecordedLines(t *testing.T) {
	want, err := os.ReadFile("testdata/recorded.explain")
	if err != nil {
		t.Fatal(err)
	}
	var out, errs bytes.Buffer
	if code := explainMain([]string{"testdata/recorded.jsonl"}, nil, &out, &errs); code != 0 {
		t.Fatalf("exit %d, stderr %s", code, errs.String())
	}
	if out.String() != string(want) {
		t.Errorf("explain:\n%s\nwant:\n%s", out.String(), want)
	}
}

// A line that is not an event is named, and the lines after it are still
// explained; the exit status says something was skipped.
func TestExplainBadLine(t *testing.T) {
	rec, err := os.ReadFile("testdata/recorded.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	in := "not json\n" + `{"message":"oom_kill","victim":"nope"}` + "\n" + string(rec)
	var out, errs bytes.Buffer
	if code := explainMain([]string{"-"}, strings.NewReader(in), &out, &errs); code != 1 {
		t.Errorf("exit %d, want 1", code)
	}
	if !strings.Contains(errs.String(), "stdin:1: not a JSON line") || !strings.Contains(errs.String(), "stdin:2: not an oom_kill event") {
		t.Errorf("stderr %q does not name lines 1 and 2", errs.String())
	}
	if !strings.Contains(out.String(), "OOM kill: webhog[24258]") {
		t.Errorf("the good kill after the bad lines was not explained: %q", out.String())
	}
}

func TestExplainMissingFile(t *testing.T) {
	var out, errs bytes.Buffer
	if code := explainMain([]string{"testdata/none.jsonl"}, nil, &out, &errs); code != 1 || !strings.Contains(errs.String(), "none.jsonl") {
		t.Errorf("exit %d, stderr %q", code, errs.String())
	}
	if code := explainMain([]string{"a", "b"}, nil, &out, &errs); code != 2 {
		t.Errorf("two files: exit %d, want 2", code)
	}
}

// A kill recorded on the host with a second process in its cgroup: the
// sentence names the runner-up, and the breakdown lists both candidates
// (the model's, as mark_victim mode has it) and the margin.
func TestExplainRecordedCandidates(t *testing.T) {
	want, err := os.ReadFile("testdata/recorded-candidates.explain")
	if err != nil {
		t.Fatal(err)
	}
	var out, errs bytes.Buffer
	if code := explainMain([]string{"testdata/recorded-candidates.jsonl"}, nil, &out, &errs); code != 0 {
		t.Fatalf("exit %d, stderr %s", code, errs.String())
	}
	if out.String() != string(want) {
		t.Errorf("explain:\n%s\nwant:\n%s", out.String(), want)
	}
	for _, s := range []string{"runner-up cachefill[4056] score 7135, 6674 behind", "* webhog[4062]", "beat the runner-up by 6674 points"} {
		if !strings.Contains(out.String(), s) {
			t.Errorf("explain output lacks %q", s)
		}
	}
}
