package explain

import (
	"strings"
	"testing"
	"time"

	"github.com/oomtrace/oomtrace/event"
)

func kill() event.Kill {
	return event.Kill{
		Time:    time.Date(2026, 12, 1, 12, 0, 0, 123e6, time.UTC),
		Victim:  event.Victim{Pid: 42, Comm: "web", Pages: event.Pages{Anon: 256, PgTables: 4}},
		Trigger: event.Trigger{Pid: 7, Comm: "alloc"},
		Kills:   1,
	}
}

var style = Style{PageSize: 4096}

func TestSentenceGlobalOOM(t *testing.T) {
	k := kill()
	k.OOM.Constraint, k.OOM.TotalPages = event.Ptr("none"), event.Ptr(uint64(262144))
	k.Score = event.Score{Kernel: event.Ptr(int64(260)), Recomputed: event.Ptr(int64(260)), Match: event.Ptr(true)}
	k.Victim.Cgroup.Path = event.Ptr("/system.slice/web.service")
	want := "2026-12-01T12:00:00.123Z OOM kill: web[42] rss 1.0 MiB, cgroup /system.slice/web.service; global OOM (RAM + swap 1.0 GiB); score 260 = model; trigger alloc[7]"
	if got := style.Sentence(k); got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
}

func TestSentenceVariants(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(*event.Kill)
		want string
	}{
		{"no scope, limit inferred", func(k *event.Kill) {
			k.Victim.Cgroup.EffectiveLimitBytes, k.Victim.Cgroup.EffectiveLimitPath = event.Ptr(int64(64<<20)), event.Ptr("/a")
		}, "limit 64.0 MiB of /a (inferred); score unknown"},
		{"mismatch", func(k *event.Kill) {
			k.Score = event.Score{Kernel: event.Ptr(int64(5)), Recomputed: event.Ptr(int64(6)), Match: event.Ptr(false)}
		}, "score 5, model 6: MISMATCH"},
		{"special case", func(k *event.Kill) {
			k.Score = event.Score{Kernel: event.Ptr(int64(0)), Recomputed: event.Ptr(int64(9)), Match: event.Ptr(true), SpecialCase: "oom_kill_allocating_task"}
		}, "score 0 as the model expects (oom_kill_allocating_task)"},
		{"pod container by id", func(k *event.Kill) {
			k.Container.Runtime, k.Container.ID = event.Ptr("containerd"), event.Ptr(strings.Repeat("ab", 32))
			k.K8s.PodUID = event.Ptr("uid-1")
		}, "container abababababab (containerd) of pod uid-1"},
		{"group and swap", func(k *event.Kill) { k.Kills, k.Victim.Pages.Swap = 3, 512 }, "rss 1.0 MiB + swap 2.0 MiB (3 processes killed)"},
		{"victim is the trigger", func(k *event.Kill) { k.Trigger = event.Trigger{Pid: 42, Comm: "web"} }, "trigger web[42] (itself)"},
		{"unknown everything", func(k *event.Kill) { k.Trigger = event.Trigger{} }, "cgroup unknown; scope unknown; score unknown; trigger unknown"},
		{"runner-up by the kernel", func(k *event.Kill) {
			k.Candidates = []event.Candidate{{Pid: 42, Comm: "web", Victim: true, Score: event.Ptr(int64(900))}, {Pid: 43, Comm: "db", Score: event.Ptr(int64(700))}}
			k.CandidatesTotal, k.CandidatesSource, k.Score.Margin = event.Ptr(5), event.Ptr("kernel"), event.Ptr(int64(200))
		}, "runner-up db[43] score 700, 200 behind (of 5); trigger"},
		{"runner-up unkillable", func(k *event.Kill) {
			k.Candidates = []event.Candidate{{Pid: 42, Comm: "web", Victim: true, Score: event.Ptr(int64(900))}, {Pid: 44, Comm: "init", Unkillable: true}}
			k.CandidatesTotal, k.CandidatesSource = event.Ptr(2), event.Ptr("model")
		}, "runner-up init[44] unkillable (of 2, by the model)"},
		{"alone", func(k *event.Kill) {
			k.Candidates = []event.Candidate{{Pid: 42, Comm: "web", Victim: true, Score: event.Ptr(int64(900))}}
			k.CandidatesTotal = event.Ptr(1)
		}, "; no other candidate; trigger"},
	} {
		k := kill()
		tc.edit(&k)
		if got := style.Sentence(k); !strings.Contains(got, tc.want) {
			t.Errorf("%s: %q lacks %q", tc.name, got, tc.want)
		}
	}
}

func TestSentenceColor(t *testing.T) {
	if got := (Style{PageSize: 4096, Color: true}).Sentence(kill()); !strings.Contains(got, "\x1b[1;31mOOM kill:\x1b[0m") {
		t.Errorf("no colour: %q", got)
	}
	if got := style.Sentence(kill()); strings.Contains(got, "\x1b[") {
		t.Errorf("colour without asking: %q", got)
	}
}

func TestWhy(t *testing.T) {
	k := kill()
	if w := style.Why(k); w != nil {
		t.Errorf("no scope, yet %q", w)
	}
	k.OOM.TotalPages, k.Score.Kernel = event.Ptr(uint64(16384)), event.Ptr(int64(260+16*-10))
	k.Victim.OOMScoreAdj = -10
	got := strings.Join(style.Why(k), "\n")
	for _, want := range []string{"rss 256 (anon 256 + file 0 + shmem 0) + swap 0 + page tables 4 = 260", "oom_score_adj -10 x totalpages 16384 / 1000 = -160", "badness 260 + -160 = 100; the kernel scored 100"} {
		if !strings.Contains(got, want) {
			t.Errorf("why lacks %q:\n%s", want, got)
		}
	}
}

// The candidates' table: the victim starred, a kernel score the model
// disagrees with shown beside it, unkillable tasks named so; shown even
// where the victim's own breakdown cannot be (no scope).
func TestWhyCandidates(t *testing.T) {
	k := kill()
	k.Candidates = []event.Candidate{
		{Pid: 42, Comm: "web", Victim: true, Score: event.Ptr(int64(900)), ModelScore: event.Ptr(int64(900)), Pages: event.CandidatePages{RSS: 890, PgTables: 10}},
		{Pid: 43, Comm: "db", Score: event.Ptr(int64(700)), ModelScore: event.Ptr(int64(650)), OOMScoreAdj: 50, Pages: event.CandidatePages{RSS: 640, Swap: 5, PgTables: 5}},
		{Pid: 44, Comm: "agent", Unkillable: true, OOMScoreAdj: -1000, Pages: event.CandidatePages{RSS: 10}},
	}
	k.CandidatesTotal, k.CandidatesUnkillable, k.CandidatesSource = event.Ptr(3), event.Ptr(1), event.Ptr("kernel")
	k.Score.Margin = event.Ptr(int64(200))
	got := strings.Join(style.Why(k), "\n")
	for _, want := range []string{
		"why web[42]:",
		"candidates (3 weighed, 1 unkillable; scores from the kernel):",
		"* web[42]                pages      900  adj     0  score 900",
		"  db[43]                 pages      650  adj    50  score 700 (model 650)",
		"agent[44]              pages       10  adj -1000  score unkillable",
		"the victim beat the runner-up by 200 points (800 KiB)",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("lacks %q:\n%s", want, got)
		}
	}
}
