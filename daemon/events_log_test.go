package daemon

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"github.com/oomtrace/oomtrace/kernel/cgroupfs"
	"github.com/oomtrace/oomtrace/kernel/psi"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/oomtrace/oomtrace/enrich"
	"github.com/oomtrace/oomtrace/enrich/cgroups"
	"github.com/oomtrace/oomtrace/enrich/docker"
	"github.com/oomtrace/oomtrace/enrich/history"
	"github.com/oomtrace/oomtrace/kernel/badness"
	"github.com/oomtrace/oomtrace/kernel/node"
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
		k.ScopeFrom = tracer.ScopeFromHook
		k.Group = []tracer.Process{{Pid: 200, Tid: 200, Comm: "other"}}
	}
	return k
}

// sampleResult is a full enrichment: a Docker container in a kubepods path.
func sampleResult() enrich.Result {
	limit, usage := int64(64<<20), int64(60<<20)
	score, margin := int64(333), int64(7000)
	pages := uint64(16384)
	return enrich.Result{
		VictimPath: "/kubepods/burstable/pod0d3b4e2a-1111-2222-3333-444455556666/" + strings.Repeat("ab", 32),
		Limits: &cgroups.Limits{
			Chain: []cgroups.Memcg{
				{Path: "/kubepods/x", Limit: &limit, Usage: &usage},
				{Path: "/"},
			},
			Effective: &limit, EffectivePath: "/kubepods/x",
		},
		Hit:       &cgroups.Hit{Path: "/kubepods/x", Limit: &limit, Source: cgroups.SourceKernel},
		Container: cgroups.Container{Runtime: "docker", ID: strings.Repeat("ab", 32), PodUID: "0d3b4e2a-1111-2222-3333-444455556666", QoS: "Burstable"},
		Docker: &docker.Info{ID: strings.Repeat("ab", 32), Name: "web", Image: "oomtrace-hog:test", ImageID: "sha256:00",
			Labels: map[string]string{"com.docker.compose.service": "web", "evil\"key": "v\x00"}, MemoryLimit: limit},
		Score:              &badness.Check{Recomputed: 8207, Expected: 8207, Match: true},
		OOMScore:           &score,
		TotalPagesExpected: &pages,
		Node:               &node.Context{MemTotalBytes: 1 << 30},
		GFPFlags:           []string{"GFP_HIGHUSER_MOVABLE", "__GFP_COMP"},
		Candidates: &enrich.Candidates{Source: enrich.CandidatesKernel, Total: 3, Unkillable: 1, Margin: &margin,
			List: []enrich.Candidate{
				{Pid: 20, Tid: 21, Comm: "victim", Score: 8207, ModelScore: 8207, Victim: true, Pages: tracer.Pages{Anon: 8000, PgTables: 7}},
				{Pid: 30, Tid: 30, Comm: "sidecar", Score: 1207, ModelScore: 1207, OOMScoreAdj: 100, Pages: tracer.Pages{Anon: 900}},
			}},
		MemcgStat:   &cgroupfs.MemStat{Anon: &usage, File: &limit},
		MemcgEvents: &cgroupfs.MemEvents{Max: &score, OOMKill: &score},
		PSI:         &psi.Pressure{Some: psi.Stall{Avg10: 1.5, TotalUs: 9}, Full: psi.Stall{TotalUs: 3}},
		PSIScope:    "cgroup",
		KernelStack: []string{"oom_kill_process", "out_of_memory"},
		Top:         []enrich.TopProcess{{Pid: 20, Comm: "victim", RSSBytes: 8000 * 4096}, {Pid: 30, Comm: "sidecar", RSSBytes: 900 * 4096}},
		History:     []history.Sample{{At: time.Unix(1700000000, 0), UsageBytes: usage}},
		Errors:      map[string]string{},
	}
}

func render(t *testing.T, k tracer.Kill, r enrich.Result) map[string]any {
	t.Helper()
	var buf bytes.Buffer
	logKill(zerolog.New(&buf), k, r)
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
	f, err := os.Open("../docs/events.md")
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
	hooked := render(t, sampleKill(true), sampleResult())
	markOnly := render(t, sampleKill(false), enrich.Result{Errors: map[string]string{"cgroup": "not found"}})
	for _, field := range documentedFields(t) {
		if field == "victim.partial" || field == "score.special_case" {
			continue // only present when set
		}
		if _, ok := lookup(hooked, field); !ok {
			t.Errorf("hooked event lacks documented field %s", field)
		}
		if strings.HasPrefix(field, "group[]") || strings.HasPrefix(field, "victim.cgroup.chain[]") || strings.HasPrefix(field, "candidates[]") ||
			field == "node" || strings.HasPrefix(field, "node.") {
			continue // empty, or on global OOMs only
		}
		if strings.HasPrefix(field, "oom.memcg.stat.") || strings.HasPrefix(field, "oom.memcg.events.") || strings.HasPrefix(field, "oom.memcg.psi.") ||
			strings.HasPrefix(field, "oom.memcg.top[]") || strings.HasPrefix(field, "oom.memcg.history[]") {
			continue // in an object or array that is null when unread
		}
		if _, ok := lookup(markOnly, field); !ok {
			t.Errorf("mark_victim event lacks documented field %s", field)
		}
	}
	for _, nullable := range []string{"oom.source", "oom.constraint", "oom.totalpages", "oom.memcg.id", "score.kernel",
		"score.match", "victim.cgroup.path", "container.name", "k8s.pod_uid", "oom.memcg.stat", "oom.memcg.events", "oom.memcg.psi",
		"oom.memcg.top", "oom.memcg.history",
		"trigger.kernel_stack"} {
		if v, _ := lookup(markOnly, nullable); v != nil {
			t.Errorf("mark_victim event: %s = %v, want null", nullable, v)
		}
	}
}

func TestKillEventValues(t *testing.T) {
	m := render(t, sampleKill(true), sampleResult())
	for path, want := range map[string]any{
		"message":                             "oom_kill",
		"time":                                "2026-11-28T01:02:03.000000004Z",
		"attach":                              "fentry",
		"victim.pid":                          100.0,
		"victim.comm":                         `\xff"\\}\x0a{`,
		"victim.pages.pgtables":               5.0,
		"oom.constraint":                      "memcg",
		"oom.source":                          "oom_kill_process",
		"oom.totalpages":                      16384.0,
		"score.kernel":                        8207.0,
		"group[].pid":                         200.0,
		"container.name":                      "web",
		"container.runtime":                   "docker",
		"k8s.qos":                             "Burstable",
		"score.match":                         true,
		"score.recomputed":                    8207.0,
		"oom.memcg.limit_bytes":               float64(64 << 20),
		"oom.memcg.source":                    "kernel",
		"victim.cgroup.effective_limit_bytes": float64(64 << 20),
		"victim.cgroup.chain[].usage_bytes":   float64(60 << 20),
		"oom.gfp_flags[]":                     "GFP_HIGHUSER_MOVABLE",
	} {
		if got, _ := lookup(m, path); got != want {
			t.Errorf("%s = %#v, want %#v", path, got, want)
		}
	}
}

// Labels are the container starter's to choose: huge ones are cut, so every
// line stays valid JSON of bounded size.
func TestHugeLabelsAreBounded(t *testing.T) {
	r := sampleResult()
	r.Docker.Labels = map[string]string{}
	for i := 0; i < 200; i++ {
		r.Docker.Labels[fmt.Sprintf("k%03d", i)] = strings.Repeat("é", 1<<20) // 2 MiB each
	}
	var buf bytes.Buffer
	logKill(zerolog.New(&buf), sampleKill(true), r)
	if n := buf.Len(); n > 200<<10 {
		t.Fatalf("line is %d bytes", n)
	}
	var m map[string]any
	if err := json.Unmarshal(buf.Bytes(), &m); err != nil {
		t.Fatalf("invalid JSON: %v", err)
	}
	labels, _ := lookup(m, "container.labels")
	lm := labels.(map[string]any)
	if len(lm) != maxLabels+1 || lm["oomtrace.truncated_labels"] != float64(200-maxLabels) {
		t.Errorf("%d labels, truncated count %v", len(lm), lm["oomtrace.truncated_labels"])
	}
	if v := lm["k000"].(string); !strings.Contains(v, "bytes truncated)") || !utf8.ValidString(v) {
		t.Errorf("label value not cut cleanly: %.40q…", v)
	}
}

// A value the kernel's layout hid is named, so a 0 is not taken for a measurement.
func TestKillEventNamesUnknownValues(t *testing.T) {
	k := sampleKill(false)
	known := render(t, k, enrich.Result{})
	if v, _ := lookup(known, "victim.unknown"); v == nil || len(v.([]any)) != 0 {
		t.Errorf("victim.unknown = %#v with every value known, want []", v)
	}
	k.Victim.Unknown = tracer.UnknownPages | tracer.UnknownCgroup
	m := render(t, k, enrich.Result{})
	v, _ := lookup(m, "victim.unknown")
	if got, _ := v.([]any); len(got) != 2 || got[0] != "pages" || got[1] != "cgroup" {
		t.Errorf("victim.unknown = %#v, want [pages cgroup]", v)
	}
}

// No line repeats a key: strict JSON parsers (Elasticsearch's) reject such
// documents. Checked with a decoder that sees every key of every object.
func TestKillEventRepeatsNoKey(t *testing.T) {
	if got := repeatedKey(t, []byte(`{"oom":{"memcg":{"id":0,"path":null,"id":null}}}`)); got != ".oom.memcg.id" {
		t.Fatalf("the checker missed a repeated key: %q", got)
	}
	for _, hooked := range []bool{true, false} {
		var buf bytes.Buffer
		logKill(zerolog.New(&buf), sampleKill(hooked), sampleResult())
		if dup := repeatedKey(t, buf.Bytes()); dup != "" {
			t.Errorf("hooked=%v: key %s repeated in %s", hooked, dup, buf.String())
		}
	}
}

// repeatedKey walks a JSON document token by token and returns the first
// key that appears twice in one object, "" when none does.
func repeatedKey(t *testing.T, doc []byte) string {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(doc))
	var walk func(path string) string
	walk = func(path string) string {
		tok, err := dec.Token()
		if err != nil {
			t.Fatalf("decoding %s: %v", path, err)
		}
		switch tok {
		case json.Delim('{'):
			seen := map[string]bool{}
			for dec.More() {
				k, err := dec.Token()
				if err != nil {
					t.Fatal(err)
				}
				key := path + "." + k.(string)
				if seen[key] {
					return key
				}
				seen[key] = true
				if d := walk(key); d != "" {
					return d
				}
			}
			_, _ = dec.Token() // }
		case json.Delim('['):
			for dec.More() {
				if d := walk(path + "[]"); d != "" {
					return d
				}
			}
			_, _ = dec.Token() // ]
		}
		return ""
	}
	return walk("")
}
