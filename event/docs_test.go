package event

// docs/events.md and these types, both ways: every field a line carries is
// documented, every documented field exists, every message has its section,
// and no struct holds a key twice.

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

// messages are the line types with a field table of their own in the docs.
var tabled = []Message{Kill{}, NoKill{}, AllocRefused{}, Started{}, Stopped{}, Risk{}, Missed{}, MissedUnknown{}}

// described are the line types whose fields the docs name in prose.
var described = []Message{EventsDropped{}, ScoreMismatch{}, RiskPolling{}}

// zerolog's own keys, on every line.
var zerologKeys = []string{"level", "message"}

// paths lists the keys of t, dotted, "[]" for a slice's elements; an
// object's own path comes before its fields'. Maps are leaves.
func paths(t reflect.Type, prefix string) []string {
	for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice {
		if t.Kind() == reflect.Slice {
			prefix += "[]"
		}
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct || t == reflect.TypeOf(time.Time{}) {
		return nil
	}
	var out []string
	for i := range t.NumField() {
		name, _ := jsonName(t.Field(i))
		if name == "" {
			continue
		}
		p := name
		if prefix != "" {
			p = prefix + "." + name
		}
		out = append(out, p)
		out = append(out, paths(t.Field(i).Type, p)...)
	}
	return out
}

// docSections reads docs/events.md: per "## `message`" heading, the field
// names of its table rows (a row may name several), and its whole text.
func docSections(t *testing.T) (fields map[string][]string, text map[string]string) {
	t.Helper()
	data, err := os.ReadFile("../docs/events.md")
	if err != nil {
		t.Fatal(err)
	}
	heading := regexp.MustCompile("^## `([a-z_]+)`")
	name := regexp.MustCompile("`([a-z_.\\[\\]0-9]+)`")
	fields, text = map[string][]string{}, map[string]string{}
	cur := ""
	for _, line := range strings.Split(string(data), "\n") {
		if strings.HasPrefix(line, "## ") {
			cur = ""
			if m := heading.FindStringSubmatch(line); m != nil {
				cur = m[1]
			}
			continue
		}
		if cur == "" {
			continue
		}
		text[cur] += line + "\n"
		if cells := strings.Split(line, "|"); len(cells) > 2 && strings.HasPrefix(line, "| `") {
			for _, m := range name.FindAllStringSubmatch(cells[1], -1) {
				fields[cur] = append(fields[cur], m[1])
			}
		}
	}
	return fields, text
}

func TestDocsMatchTheTypes(t *testing.T) {
	fields, text := docSections(t)
	for _, m := range tabled {
		doc := fields[m.Name()]
		if len(doc) == 0 {
			t.Errorf("%s: no field table in docs/events.md", m.Name())
			continue
		}
		have := paths(reflect.TypeOf(m), "")
		// A field is documented by its own row or an enclosing object's;
		// an object also by rows for its fields.
		for _, p := range have {
			documented := false
			for q := p; q != ""; q = parent(q) {
				documented = documented || slices.Contains(doc, q)
			}
			for _, d := range doc {
				documented = documented || strings.HasPrefix(d, p+".") || strings.HasPrefix(d, p+"[].")
			}
			if !documented {
				t.Errorf("%s: field %s is not in docs/events.md", m.Name(), p)
			}
		}
		for _, d := range doc {
			if !slices.Contains(have, d) && !slices.Contains(zerologKeys, d) {
				t.Errorf("%s: docs/events.md documents %s, which the line does not have", m.Name(), d)
			}
		}
	}
	// Prose sections name every field (oom_risk_polling lives in oom_risk's).
	for _, m := range described {
		section := m.Name()
		if section == "oom_risk_polling" {
			section = "oom_risk"
		}
		for _, p := range paths(reflect.TypeOf(m), "") {
			if p != "time" && !strings.Contains(text[section], "`"+p+"`") {
				t.Errorf("%s: field %s is not named in docs/events.md's %s section", m.Name(), p, section)
			}
		}
	}
	// Every diagnostic is in the table of them, or has a section.
	data, _ := os.ReadFile("../docs/events.md")
	for _, d := range Diagnostics {
		if !bytes.Contains(data, []byte("| `"+d+"` |")) && text[d] == "" {
			t.Errorf("diagnostic %s is not documented", d)
		}
	}
}

// parent is the enclosing object's path: "a.b[].c" -> "a.b", "a" -> "".
func parent(p string) string {
	i := strings.LastIndex(p, ".")
	if i < 0 {
		return ""
	}
	return strings.TrimSuffix(p[:i], "[]")
}

// No struct holds a key twice (encoding/json would drop both silently), at
// any depth of any line type.
func TestNoRepeatedKeys(t *testing.T) {
	for _, m := range append(append([]Message{Diagnostic{}}, tabled...), described...) {
		seen := map[string]bool{}
		for _, p := range paths(reflect.TypeOf(m), "") {
			if seen[p] {
				t.Errorf("%s: key %s twice", m.Name(), p)
			}
			seen[p] = true
		}
		for _, k := range zerologKeys {
			if seen[k] {
				t.Errorf("%s: field %s collides with zerolog's own key", m.Name(), k)
			}
		}
	}
}

// What Write produces decodes back into the same type, with the message and
// the level zerolog adds; unknown values are null, not absent.
func TestWriteRoundTrip(t *testing.T) {
	var buf bytes.Buffer
	k := Kill{
		Time: time.Date(2026, 12, 1, 1, 2, 3, 4, time.UTC), SchemaVersion: SchemaVersion, Attach: "mark_victim",
		Victim: Victim{Pid: 7, Comm: `a"b`, Unknown: []string{}, Cgroup: Cgroup{Chain: []Memcg{}}},
		Group:  []Process{}, Kills: 1, EnrichErrors: map[string]string{}, Container: Container{Labels: map[string]any{}},
	}
	Write(zerolog.New(&buf), zerolog.InfoLevel, k)
	var got Kill
	dec := json.NewDecoder(bytes.NewReader(buf.Bytes()))
	var raw map[string]json.RawMessage
	if err := dec.Decode(&raw); err != nil {
		t.Fatalf("%v: %s", err, buf.String())
	}
	if string(raw["message"]) != `"oom_kill"` || string(raw["level"]) != `"info"` {
		t.Errorf("message %s level %s", raw["message"], raw["level"])
	}
	if string(raw["oom"]) == "" || !strings.Contains(string(raw["oom"]), `"constraint":null`) {
		t.Errorf("unknown oom fields not null: %s", raw["oom"])
	}
	if err := json.Unmarshal(buf.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	if !got.Time.Equal(k.Time) || got.Victim.Comm != k.Victim.Comm || got.Victim.Pid != 7 {
		t.Errorf("round trip: %+v", got)
	}

	buf.Reset()
	Write(zerolog.New(&buf), zerolog.ErrorLevel, NewDiagnostic("record_error", errors.New("short record")))
	if !strings.Contains(buf.String(), `"error":"short record"`) || !strings.Contains(buf.String(), `"message":"record_error"`) {
		t.Errorf("diagnostic line %s", buf.String())
	}
}
