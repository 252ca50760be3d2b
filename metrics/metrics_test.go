package metrics

import (
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

func scrape(t *testing.T, addr string) string {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return string(body)
}

func TestMetricsOverHTTP(t *testing.T) {
	m := New(2, func() (uint64, error) { return 7, nil })
	s, err := Listen("127.0.0.1:0", m)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()

	resp, err := http.Get("http://" + s.Addr() + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("healthz before ready: %d", resp.StatusCode)
	}
	s.SetReady(true)
	resp, _ = http.Get("http://" + s.Addr() + "/healthz")
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("healthz when ready: %d", resp.StatusCode)
	}

	m.Hook("oom_kill_process", "fentry")
	m.Kill("memcg", "web", "", 1)
	m.Kill("memcg", "db", "pod-1", 2)
	m.Kill("memcg", "third", "", 1) // past the bound of 2
	m.Kill("memcg", "web", "", 1)
	m.Kill("none", "", "", 1)
	m.Lost(StageQueue, 3)
	m.EnrichError("docker")
	m.ScoreMismatch()
	m.Latency(StageQueued, 80*time.Microsecond)
	m.Latency(StageWritten, 300*time.Microsecond)
	m.Latency(StageWritten, 3*time.Millisecond)
	body := scrape(t, s.Addr())
	for _, want := range []string{
		`oomtrace_kills_total{constraint="memcg"} 5`,
		`oomtrace_kills_total{constraint="none"} 1`,
		`oomtrace_container_kills_total{container="web",pod_uid=""} 2`,
		`oomtrace_container_kills_total{container="db",pod_uid="pod-1"} 2`,
		`oomtrace_container_kills_total{container="other",pod_uid=""} 1`,
		`oomtrace_events_lost_total{stage="ringbuf"} 7`,
		`oomtrace_events_lost_total{stage="queue"} 3`,
		`oomtrace_events_lost_total{stage="output"} 0`,
		`oomtrace_enrich_errors_total{source="docker"} 1`,
		`oomtrace_score_mismatches_total 1`,
		`oomtrace_hook_attached{hook="oom_kill_process",mode="fentry"} 1`,
		`oomtrace_build_info{version=`,
		`oomtrace_kill_latency_seconds_bucket{stage="queued",le="0.0001"} 1`,
		`oomtrace_kill_latency_seconds_bucket{stage="written",le="0.0005"} 1`,
		`oomtrace_kill_latency_seconds_bucket{stage="written",le="0.002"} 1`,
		`oomtrace_kill_latency_seconds_bucket{stage="written",le="0.005"} 2`,
		`oomtrace_kill_latency_seconds_count{stage="written"} 2`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("scrape lacks %s", want)
		}
	}
	if strings.Contains(body, `container="third"`) {
		t.Error("cardinality bound not applied")
	}
}

func TestRingbufReadError(t *testing.T) {
	m := New(1, func() (uint64, error) { return 0, errors.New("map gone") })
	s, err := Listen("127.0.0.1:0", m)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	resp, err := http.Get("http://" + s.Addr() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusInternalServerError {
		t.Errorf("a failing collector should fail the scrape visibly, got %d", resp.StatusCode)
	}
}

// Every refusal counts, by syscall and rule, however many a line stands for.
func TestAllocRefusedCounts(t *testing.T) {
	m := New(2, nil)
	s, err := Listen("127.0.0.1:0", m)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	m.AllocRefused("mmap", "heuristic", 1)
	m.AllocRefused("mmap", "heuristic", 9999)
	m.AllocRefused("clone", "strict", 3)
	body := scrape(t, s.Addr())
	for _, want := range []string{
		`oomtrace_alloc_refused_total{rule="heuristic",syscall="mmap"} 10000`,
		`oomtrace_alloc_refused_total{rule="strict",syscall="clone"} 3`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("no %s in the scrape", want)
		}
	}
}
