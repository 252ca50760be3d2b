package main

// End-to-end tests of the oomtrace binary: built, started as a user would,
// fed real OOM kills in a scratch cgroup, stopped with SIGTERM.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/oomtrace/oomtrace/internal/dockertest"
	"github.com/oomtrace/oomtrace/internal/oomtest"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

func TestMain(m *testing.M) {
	oomtest.MaybeRunHog()
	dockertest.Main(m) // runs the tests, then stops a Docker engine they started
}

func buildBinary(t *testing.T) string {
	t.Helper()
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("needs the go toolchain to build the binary (inside the VM, the tracer package tests run instead)")
	}
	bin := filepath.Join(t.TempDir(), "oomtrace")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// lines collects a process's stdout line by line.
type lines struct {
	mu   sync.Mutex
	all  []string
	done chan struct{}
}

func (l *lines) snapshot() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.all...)
}

func startBinary(t *testing.T, bin string, args ...string) (*exec.Cmd, *lines, *bytes.Buffer) {
	return startBinaryEnv(t, bin, nil, args...)
}

func startBinaryEnv(t *testing.T, bin string, env []string, args ...string) (*exec.Cmd, *lines, *bytes.Buffer) {
	t.Helper()
	cmd, out, stderr := launch(t, bin, env, args...)
	l := &lines{done: make(chan struct{})}
	go func() {
		defer close(l.done)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			l.mu.Lock()
			l.all = append(l.all, sc.Text())
			l.mu.Unlock()
		}
	}()
	return cmd, l, stderr
}

// launch starts the binary and waits until it is ready. Nothing reads its
// stdout yet: a test may leave it unread to stall the output.
func launch(t *testing.T, bin string, env []string, args ...string) (*exec.Cmd, io.ReadCloser, *bytes.Buffer) {
	t.Helper()
	ready := filepath.Join(t.TempDir(), "ready")
	// Port 0: tests may run beside a real oomtrace on the default port.
	// No ledger: a first start would backfill every kill in the kernel log,
	// and these tests count the oom_kill lines of their own kills.
	cmd := exec.Command(bin, append([]string{"--ready-file", ready, "--metrics-addr", "127.0.0.1:0", "--state-dir", ""}, args...)...)
	cmd.Env = append(os.Environ(), env...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	waitFile(t, ready, stderr.String)
	return cmd, out, &stderr
}

// waitFile waits up to 30 s for path (a --ready-file) to appear; detail,
// when not nil, says more on failure (the tracer's stderr).
func waitFile(t *testing.T, path string, detail func() string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, err := os.Stat(path); err == nil {
			return
		}
		if time.Now().After(deadline) {
			more := ""
			if detail != nil {
				more = detail()
			}
			t.Fatalf("%s did not appear in 30s %s", path, more)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestBinaryReportsKillsAndStopsCleanly(t *testing.T) {
	oomtest.RequireRoot(t)
	h := oomtest.MustHierarchy(t)
	bin := buildBinary(t)
	cmd, out, stderr := startBinary(t, bin)
	cg := oomtest.NewCgroup(t, h, nil, "e2e", 64<<20)
	before, err := cg.OOMKills()
	if err != nil {
		t.Fatal(err)
	}
	vmBefore, _ := oomtest.VMStatOOMKills()

	const hogs = 3
	for i := 0; i < hogs; i++ {
		p, err := oomtest.Hog{Cgroup: cg, MB: 256, Threads: 4, Comm: "e2e-hog"}.Start(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if killed, err := p.Wait(); err != nil || !killed {
			t.Fatalf("hog: killed=%v err=%v", killed, err)
		}
	}
	after, _ := cg.OOMKills()
	vmAfter, _ := oomtest.VMStatOOMKills()
	// Kills elsewhere on the machine in the meantime are not this test's:
	// its lines are told by their cgroup, the metrics only by their sum.
	quiet := vmAfter-vmBefore == after-before
	// The metrics count the same kills: by constraint, and once per stage
	// in the latency histogram. Each kill is counted as its line is
	// written: wait for the last one, at most 5 s. Both counts are awaited:
	// a scrape is no snapshot (Prometheus collects each metric on its own,
	// concurrently), so the counter may be read before the last kill's
	// write and the histogram after it.
	var m metricCounts
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		m = daemonCounts(t, out.snapshot())
		if (m.latency["written"] >= hogs && m.kills >= hogs) || time.Now().After(deadline) {
			break
		}
	}
	if quiet && (m.latency["queued"] != hogs || m.latency["written"] != hogs) {
		t.Errorf("latency histogram counts %v, want %d per stage", m.latency, hogs)
	}
	if m.kills < after-before || (quiet && m.kills != after-before) {
		t.Errorf("oomtrace_kills_total sums to %d; kernel: cgroup +%d, vmstat +%d", m.kills, after-before, vmAfter-vmBefore)
	}

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	waited := make(chan error, 1)
	go func() { <-out.done; waited <- cmd.Wait() }()
	select {
	case err := <-waited:
		if err != nil {
			t.Fatalf("exit after SIGTERM: %v; stderr: %s", err, stderr.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no exit within 10s of SIGTERM")
	}

	var started, stopped, kills int
	for _, line := range out.snapshot() {
		var ev map[string]any
		if err := json.Unmarshal([]byte(line), &ev); err != nil {
			t.Fatalf("invalid JSON line %q: %v", line, err)
		}
		switch ev["message"] {
		case "oomtrace_started":
			started++
		case "oomtrace_stopped":
			stopped++
		case "oom_kill":
			victim := ev["victim"].(map[string]any)
			if id, _ := victim["cgroup"].(map[string]any)["id"].(float64); uint64(id) != cg.ID {
				continue // another kill on this machine
			}
			if victim["comm"] != "e2e-hog" {
				t.Errorf("victim comm %v", victim["comm"])
			}
			kills++
		}
	}
	if started != 1 || stopped != 1 {
		t.Errorf("started %d, stopped %d lines", started, stopped)
	}
	if uint64(kills) != after-before || kills != hogs {
		t.Errorf("%d oom_kill lines in the scratch cgroup; kernel: cgroup +%d; %d hogs killed", kills, after-before, hogs)
	}
}

func TestBinaryRefusesWithoutPrivileges(t *testing.T) {
	oomtest.RequireRoot(t) // to drop to nobody
	// t.TempDir's parent is private to root; nobody needs a path it can walk.
	dir, err := os.MkdirTemp("", "oomtrace-nobody-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	bin := filepath.Join(dir, "oomtrace")
	if data, err := os.ReadFile(buildBinary(t)); err != nil || os.WriteFile(bin, data, 0o755) != nil || os.Chmod(dir, 0o755) != nil {
		t.Fatalf("copying the binary: %v", err)
	}
	cmd := exec.Command(bin)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if !errorsAs(err, &ee) || ee.ExitCode() != 1 {
		t.Fatalf("as nobody: err %v, output %s", err, out)
	}
	if !strings.Contains(string(out), "needs root, or CAP_BPF + CAP_PERFMON") {
		t.Errorf("unclear message: %s", out)
	}
}

// A forced hook the kernel refuses is an error, not a silent fallback.
func TestBinaryForcedHookRefused(t *testing.T) {
	oomtest.RequireRoot(t)
	bin := buildBinary(t)
	// What this kernel allows decides what must happen: kprobes need the
	// kprobe PMU (or tracefs' kprobe_events), the classic tracepoint tracefs.
	exists := func(path string) bool { _, err := os.Stat(path); return err == nil }
	kprobes := exists("/sys/bus/event_source/devices/kprobe") || exists("/sys/kernel/tracing/kprobe_events")
	tracepoint := exists("/sys/kernel/tracing/events/oom/mark_victim")
	args := []string{"--kill-hook", "kprobe", "--mark-hook", "tracepoint"}
	if !kprobes || !tracepoint {
		// Refused: exit 1, naming the hook and why.
		cmd := exec.Command(bin, append(args, "--metrics-addr", "")...)
		out, err := cmd.CombinedOutput()
		var ee *exec.ExitError
		if !errorsAs(err, &ee) || ee.ExitCode() != 1 || !strings.Contains(string(out), "oomtrace: ") {
			t.Fatalf("kprobes %v, tracepoint %v: err %v output %s", kprobes, tracepoint, err, out)
		}
		if want := map[bool]string{true: "mark_victim", false: "kprobe"}[kprobes]; !strings.Contains(string(out), want) {
			t.Errorf("the refusal does not name %s: %s", want, out)
		}
		return
	}
	// Both allowed: it runs with exactly the forced hooks, and stops cleanly.
	cmd, out, stderr := startBinary(t, bin, args...)
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("stopping: %v, stderr %s", err, stderr)
	}
	<-out.done
	started := false
	for _, l := range out.snapshot() {
		if strings.Contains(l, `"message":"oomtrace_started"`) {
			started = strings.Contains(l, `"oom_kill_process":"kprobe"`) && strings.Contains(l, `"mark_victim":"tracepoint"`)
		}
	}
	if !started {
		t.Errorf("no startup line with the forced hooks: %v", out.snapshot())
	}
}

func TestBinaryRejectsBadFlags(t *testing.T) {
	bin := buildBinary(t)
	for _, args := range [][]string{{"--format", "xml"}, {"--kill-hook", "uprobe"}, {"extra"}} {
		out, err := exec.Command(bin, args...).CombinedOutput()
		var ee *exec.ExitError
		if !errorsAs(err, &ee) || ee.ExitCode() != 2 {
			t.Errorf("%v: err %v output %s", args, err, out)
		}
	}
}

// `oomtrace verify --json` runs its scenarios with the binary's own hogs and
// exits 0 when every applicable one passed.
func TestBinaryVerify(t *testing.T) {
	oomtest.RequireRoot(t)
	oomtest.MustHierarchy(t)
	bin := buildBinary(t)
	cmd := exec.Command(bin, "verify", "--json", "--only", "largest_footprint_chosen,multi_threaded_victim_one_kill")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("verify: %v\n%s", err, out)
	}
	var doc struct {
		Results []struct{ Scenario, Verdict string }
		Failed  bool
	}
	if err := json.Unmarshal(out, &doc); err != nil {
		t.Fatalf("verify --json: %v\n%s", err, out)
	}
	verdicts := map[string]string{}
	for _, r := range doc.Results {
		verdicts[r.Scenario] = r.Verdict
	}
	for _, s := range []string{"largest_footprint_chosen", "multi_threaded_victim_one_kill", "tracer_count_equals_kernel"} {
		if verdicts[s] != "pass" {
			t.Errorf("%s: %q", s, verdicts[s])
		}
	}
	if v := verdicts["candidate_scores_equal_model"]; v == "" || v == "fail" {
		t.Errorf("candidate_scores_equal_model: %q", v)
	}
	if doc.Failed || len(doc.Results) != 5 {
		t.Errorf("failed=%v, %d results: %s", doc.Failed, len(doc.Results), out)
	}
	// Nothing left behind.
	if left, _ := filepath.Glob("/sys/fs/cgroup/*/oomtrace-test-verify-*"); len(left) > 0 {
		t.Errorf("scratch cgroups left: %v", left)
	}
	if left, _ := filepath.Glob("/sys/fs/cgroup/oomtrace-test-verify-*"); len(left) > 0 {
		t.Errorf("scratch cgroups left: %v", left)
	}
}

// metricCounts is what the daemon's /metrics says it counted.
type metricCounts struct {
	kills   uint64            // oomtrace_kills_total, over every constraint
	latency map[string]uint64 // oomtrace_kill_latency_seconds observations by stage
}

func daemonCounts(t *testing.T, lines []string) metricCounts {
	t.Helper()
	_, body := oomtest.DaemonGet(t, lines, "/metrics")
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(strings.NewReader(body))
	if err != nil {
		t.Fatalf("parsing /metrics: %v", err)
	}
	c := metricCounts{latency: map[string]uint64{}}
	for _, m := range families["oomtrace_kills_total"].GetMetric() {
		c.kills += uint64(m.GetCounter().GetValue())
	}
	for _, m := range families["oomtrace_kill_latency_seconds"].GetMetric() {
		for _, l := range m.GetLabel() {
			if l.GetName() == "stage" {
				c.latency[l.GetValue()] = m.GetHistogram().GetSampleCount()
			}
		}
	}
	return c
}
