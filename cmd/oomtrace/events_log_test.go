package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/oomtrace/oomtrace/tracer"
	"github.com/rs/zerolog"
)

func sampleKill(hooked bool) tracer.Kill {
	k := tracer.Kill{
		Time:   time.Date(2026, 11, 28, 1, 2, 3, 4, time.UTC),
		BootNs: 42,
		Attach: tracer.AttachMarkVictimOnly,
		Victim: tracer.Task{
			Process:     tracer.Process{Pid: 100, Tid: 101, Comm: tracer.EscapeComm([]byte("\xff\"\\}\n{"))},
			UID:         1000,
			OOMScoreAdj: 500,
			StartTime:   7,
			Pages:       tracer.Pages{Anon: 1, File: 2, Shmem: 3, Swap: 4, PgTables: 5},
			CgroupID:    77,
			DflCgroupID: 1,
		},
		Trigger: tracer.Process{Pid: 100, Tid: 102, Comm: "hog"},
	}
	if hooked {
		score := int64(8207)
		k.Attach = tracer.AttachFentry
		k.Scope = &tracer.Scope{Constraint: tracer.ConstraintMemcg, TotalPages: 16384, MemcgID: 77, GFPMask: 0xcc0}
		k.KernelScore = &score
		k.Group = []tracer.Process{{Pid: 200, Tid: 200, Comm: "other"}}
	}
	return k
}

func render(t *testing.T, k tracer.Kill) map[string]any {
	t.Helper()
	var buf bytes.Buffer
	logKill(zerolog.New(&buf), k)
	if bytes.Count(buf.Bytes(), []byte("\n")) != 1 {
		t.Fatalf("not one line: %q", buf.String())
	}
	var m map[string]any
	if err := json.Unmarshal(buf.Bytes(), &m); err != nil {
		t.Fatalf("invalid JSON %q: %v", buf.String(), err)
	}
	return m
}

// lookup follows a dotted path; "group[].pid" looks in the first element.
func lookup(m map[string]any, path string) (any, bool) {
	var cur any = m
	for _, part := range strings.Split(path, ".") {
		if name, ok := strings.CutSuffix(part, "[]"); ok {
			arr, _ := cur.(map[string]any)[name].([]any)
			if len(arr) == 0 {
				return nil, false
			}
			cur = arr[0]
			continue
		}
		obj, ok := cur.(map[string]any)
		if !ok {
			return nil, false
		}
		if cur, ok = obj[part]; !ok {
			return nil, false
		}
	}
	return cur, true
}

// documentedFields reads the oom_kill table of docs/events.md, so the
// documentation and the output cannot drift apart.
func documentedFields(t *testing.T) []string {
	t.Helper()
	f, err := os.Open("../../docs/events.md")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	row := regexp.MustCompile("^\\| `([a-z_.\\[\\]]+)` \\|")
	var fields []string
	inKill := false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "## ") {
			inKill = strings.Contains(line, "`oom_kill`")
		}
		if m := row.FindStringSubmatch(line); inKill && m != nil {
			fields = append(fields, m[1])
		}
	}
	if len(fields) < 25 {
		t.Fatalf("found only %d documented fields", len(fields))
	}
	return fields
}

func TestKillEventHasEveryDocumentedField(t *testing.T) {
	hooked := render(t, sampleKill(true))
	markOnly := render(t, sampleKill(false))
	for _, field := range documentedFields(t) {
		if field == "victim.partial" {
			continue // only present when set
		}
		if _, ok := lookup(hooked, field); !ok {
			t.Errorf("hooked event lacks documented field %s", field)
		}
		if strings.HasPrefix(field, "group[]") {
			continue
		}
		if _, ok := lookup(markOnly, field); !ok {
			t.Errorf("mark_victim event lacks documented field %s", field)
		}
	}
	for _, nullable := range []string{"oom.constraint", "oom.totalpages", "oom.memcg.id", "score.kernel"} {
		if v, _ := lookup(markOnly, nullable); v != nil {
			t.Errorf("mark_victim event: %s = %v, want null", nullable, v)
		}
	}
}

func TestKillEventValues(t *testing.T) {
	m := render(t, sampleKill(true))
	for path, want := range map[string]any{
		"message":               "oom_kill",
		"time":                  "2026-11-28T01:02:03.000000004Z",
		"attach":                "fentry",
		"victim.pid":            100.0,
		"victim.comm":           `\xff"\\}\x0a{`,
		"victim.pages.pgtables": 5.0,
		"oom.constraint":        "memcg",
		"oom.totalpages":        16384.0,
		"score.kernel":          8207.0,
		"group[].pid":           200.0,
	} {
		if got, _ := lookup(m, path); got != want {
			t.Errorf("%s = %#v, want %#v", path, got, want)
		}
	}
}
