package cgroups

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const (
	mb200 = 200 << 20
	mb500 = 500 << 20
)

func ptr(v int64) *int64 { return &v }

// show prints a *int64 for messages: "nil" or the number.
func show(p *int64) string {
	if p == nil {
		return "nil"
	}
	b, _ := json.Marshal(*p)
	return string(b)
}

func checkValue(t *testing.T, what string, got, want *int64) {
	t.Helper()
	if (got == nil) != (want == nil) || (got != nil && *got != *want) {
		t.Errorf("%s = %s, want %s", what, show(got), show(want))
	}
}

func chainPaths(l Limits) string {
	var p []string
	for _, m := range l.Chain {
		p = append(p, m.Path)
	}
	return strings.Join(p, " ")
}

func TestLimitsV1Nested(t *testing.T) {
	// The v1 root has the files but reads unlimited; the child has no memsw
	// file (no swap accounting there).
	root := fixture(t, map[string]files{
		"/":              v1Memcg(v1Unlimited, v1Unlimited, "1000\n", "2000\n"),
		"/parent":        v1Memcg("209715200\n", "209715200\n", "100\n", "300\n"),
		"/parent/child":  v1Memcg("524288000\n", "", "50\n", "60\n"),
		"/parent/other/": v1Memcg(v1Unlimited, v1Unlimited, "0\n", "0\n"),
	})
	l, err := ReadLimits(Hierarchy{Root: root}, "/parent/child")
	if err != nil {
		t.Fatal(err)
	}
	if got := chainPaths(l); got != "/parent/child /parent /" {
		t.Fatalf("chain %q, want leaf first to the root", got)
	}
	checkValue(t, "effective", l.Effective, ptr(mb200))
	if l.EffectivePath != "/parent" {
		t.Errorf("effective limit held by %q, want /parent", l.EffectivePath)
	}
	child, parent, top := l.Chain[0], l.Chain[1], l.Chain[2]
	checkValue(t, "child limit", child.Limit, ptr(mb500))
	checkValue(t, "child memsw (absent)", child.MemSwLimit, nil)
	checkValue(t, "child usage", child.Usage, ptr(50))
	checkValue(t, "child max usage", child.MaxUsage, ptr(60))
	checkValue(t, "child high (v1 has none)", child.High, nil)
	checkValue(t, "parent memsw", parent.MemSwLimit, ptr(mb200))
	checkValue(t, "root limit", top.Limit, nil)
	checkValue(t, "root memsw", top.MemSwLimit, nil)
	checkValue(t, "root usage", top.Usage, ptr(1000))

	// Unlimited is null in JSON; usage stays a number.
	b, err := json.Marshal(top)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `"limit":null`) || !strings.Contains(string(b), `"usage":1000`) {
		t.Errorf("root as JSON: %s", b)
	}
}

func TestLimitsV2(t *testing.T) {
	// The v2 root has none of the files. Guaranteed pod with a limit at the
	// pod level and a smaller one on the container.
	pod := "/kubepods.slice/kubepods-pod" + uidSlice + ".slice"
	ctr := pod + "/cri-containerd-" + id1 + ".scope"
	root := fixture(t, map[string]files{
		"/":               {"cgroup.controllers": "cpu memory\n"},
		"/kubepods.slice": v2Memcg("max\n", "max\n", "max\n", "4096\n", "0\n"),
		pod:               v2Memcg("268435456\n", "max\n", "0\n", "8192\n", "0\n"),
		ctr:               v2Memcg("134217728\n", "100663296\n", "max\n", "8192\n", "4096\n"),
	})
	l, err := ReadLimits(Hierarchy{Root: root, V2: true}, ctr)
	if err != nil {
		t.Fatal(err)
	}
	if len(l.Chain) != 4 || l.Chain[3].Path != "/" {
		t.Fatalf("chain %q", chainPaths(l))
	}
	checkValue(t, "effective", l.Effective, ptr(128<<20))
	if l.EffectivePath != ctr {
		t.Errorf("effective limit held by %q, want the container", l.EffectivePath)
	}
	c := l.Chain[0]
	checkValue(t, "high", c.High, ptr(96<<20))
	checkValue(t, "swap.max (max)", c.SwapLimit, nil)
	checkValue(t, "swap.current", c.SwapUsage, ptr(4096))
	checkValue(t, "memsw (v2 has none)", c.MemSwLimit, nil)
	checkValue(t, "pod swap.max", l.Chain[1].SwapLimit, ptr(0))
	checkValue(t, "kubepods limit", l.Chain[2].Limit, nil)
	if r := l.Chain[3]; r.Limit != nil || r.Usage != nil || r.Removed {
		t.Errorf("root %+v, want every field nil and not removed", r)
	}
}

func TestLimitsUnlimitedEverywhere(t *testing.T) {
	root := fixture(t, map[string]files{"/system.slice/nginx.service": v2Memcg("max\n", "max\n", "max\n", "1\n", "0\n")})
	l, err := ReadLimits(Hierarchy{Root: root, V2: true}, "/system.slice/nginx.service")
	if err != nil {
		t.Fatal(err)
	}
	if l.Effective != nil || l.EffectivePath != "" {
		t.Errorf("effective %s held by %q, want none", show(l.Effective), l.EffectivePath)
	}
	if _, ok := l.HitLimit(""); ok {
		t.Error("inferred a hit limit on a chain with no limit")
	}
	b, _ := json.Marshal(l)
	if !strings.Contains(string(b), `"effective_limit":null`) {
		t.Errorf("JSON %s: want effective_limit null", b)
	}
}

func TestLimitsTieIsInnermost(t *testing.T) {
	root := fixture(t, map[string]files{
		"/a":   v1Memcg("1048576\n", "", "0\n", "0\n"),
		"/a/b": v1Memcg("1048576\n", "", "0\n", "0\n"),
	})
	l, err := ReadLimits(Hierarchy{Root: root}, "/a/b")
	if err != nil {
		t.Fatal(err)
	}
	if l.EffectivePath != "/a/b" {
		t.Errorf("tie went to %q, want the innermost /a/b", l.EffectivePath)
	}
}

func TestLimitsRemovedLeaf(t *testing.T) {
	// The container's cgroup went away after the kill: the ancestors still
	// tell the limit.
	root := fixture(t, map[string]files{"/parent": v1Memcg("209715200\n", "", "0\n", "0\n")})
	l, err := ReadLimits(Hierarchy{Root: root}, "/parent/gone")
	if err != nil {
		t.Fatal(err)
	}
	if !l.Chain[0].Removed || l.Chain[0].Path != "/parent/gone" || l.Chain[1].Removed {
		t.Errorf("chain %+v: want only the leaf removed", l.Chain)
	}
	checkValue(t, "effective", l.Effective, ptr(mb200))
}

func TestLimitsErrors(t *testing.T) {
	root := fixture(t, map[string]files{"/bad": v1Memcg("lots\n", "", "0\n", "0\n")})
	h := Hierarchy{Root: root}
	if _, err := ReadLimits(h, "/bad"); err == nil || !strings.Contains(err.Error(), "parsing") {
		t.Errorf("garbage limit: err %v", err)
	}
	for _, p := range []string{"", "bad", "/bad/../..", "/bad/"} {
		if _, err := ReadLimits(h, p); err == nil {
			t.Errorf("ReadLimits(%q) accepted an unclean path", p)
		}
	}
	if os.Geteuid() != 0 { // root reads anything
		if err := os.Chmod(filepath.Join(root, "bad", "memory.usage_in_bytes"), 0); err != nil {
			t.Fatal(err)
		}
		_ = os.WriteFile(filepath.Join(root, "bad", "memory.limit_in_bytes"), []byte("1\n"), 0o644)
		if _, err := ReadLimits(h, "/bad"); err == nil {
			t.Error("unreadable file: no error")
		}
	}
}

func TestHitLimit(t *testing.T) {
	l := Limits{
		Chain: []Memcg{
			{Path: "/p/c", Limit: ptr(mb500)},
			{Path: "/p", Limit: ptr(mb200)},
			{Path: "/"},
		},
		Effective: ptr(mb200), EffectivePath: "/p",
	}
	for _, tc := range []struct {
		oomMemcg string
		want     Hit
		ok       bool
	}{
		{"/p", Hit{Path: "/p", Limit: ptr(mb200), Source: SourceKernel}, true},
		// The kernel is believed over the smallest limit.
		{"/p/c", Hit{Path: "/p/c", Limit: ptr(mb500), Source: SourceKernel}, true},
		{"", Hit{Path: "/p", Limit: ptr(mb200), Source: SourceInferred}, true},
		{"/elsewhere", Hit{}, false},
	} {
		got, ok := l.HitLimit(tc.oomMemcg)
		if ok != tc.ok || got.Path != tc.want.Path || got.Source != tc.want.Source {
			t.Errorf("HitLimit(%q) = %+v, %v; want %+v, %v", tc.oomMemcg, got, ok, tc.want, tc.ok)
		}
		checkValue(t, "hit limit", got.Limit, tc.want.Limit)
	}
}
