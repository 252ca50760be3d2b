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
		Trigger: event.Process{Pid: 7, Comm: "alloc"},
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
		{"victim is the trigger", func(k *event.Kill) { k.Trigger = event.Process{Pid: 42, Comm: "web"} }, "trigger web[42] (itself)"},
		{"unknown everything", func(k *event.Kill) { k.Trigger = event.Process{} }, "cgroup unknown; scope unknown; score unknown; trigger unknown"},
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
