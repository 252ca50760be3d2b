package integration

// An OOM that kills nobody: a memory cgroup whose only task is unkillable
// (oom_score_adj -1000). Since 5.16 the kernel retries the charge, and the
// OOM killer with it, for as long as the task lives: hundreds of decisions
// a second, each choosing nobody. The daemon, run here in-process, must
// turn that into at most one oom_no_kill line per second, its repeats
// adding up to no more than the kernel's own count of the cgroup's OOMs.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/oomtrace/oomtrace/daemon"
	"github.com/oomtrace/oomtrace/event"
	"github.com/oomtrace/oomtrace/internal/oomtest"
	"github.com/oomtrace/oomtrace/tracer"
)

// lockedBuffer is the daemon's output, read while it writes.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// lines decodes the lines whose message is msg.
func (b *lockedBuffer) lines(t *testing.T, msg string, into func([]byte)) {
	b.mu.Lock()
	data := bytes.Clone(b.buf.Bytes())
	b.mu.Unlock()
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var head struct {
			Message string `json:"message"`
		}
		if err := json.Unmarshal(sc.Bytes(), &head); err != nil {
			t.Fatalf("line %q: %v", sc.Text(), err)
		}
		if head.Message == msg {
			into(sc.Bytes())
		}
	}
}

func TestNoKillAggregated(t *testing.T) {
	oomtest.RequireRoot(t)
	h := oomtest.MustHierarchy(t)
	cg := oomtest.NewCgroup(t, h, nil, "nokill", 32*mib)
	if !cg.V2 {
		t.Skip("the kernel counts a memcg's OOMs (memory.events oom) on cgroup v2 only; this machine's memory controller is on v1")
	}
	out, started, stop := startDaemon(t)
	ooms0, _, err := cg.OOMs()
	if err != nil {
		t.Fatal(err)
	}
	c := snapshot(t, cg)
	hog, err := oomtest.Hog{Cgroup: cg, MB: 128, Comm: "nokill-hog", Adj: -1000}.Start(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(hog.Stop)
	ours := func() []event.NoKill {
		var got []event.NoKill
		out.lines(t, "oom_no_kill", func(b []byte) {
			var n event.NoKill
			if err := json.Unmarshal(b, &n); err != nil {
				t.Fatal(err)
			}
			if n.OOM.Memcg.ID != nil && *n.OOM.Memcg.ID == cg.ID {
				got = append(got, n)
			}
		})
		return got
	}
	// Hooked: three lines, two windows of retries after the first. In
	// mark_victim mode, which sees no decision, a hundred OOMs the kernel
	// counted without a line.
	hooked := started.Hooks.OOMKillProcess != "none"
	enough := func() bool {
		if hooked {
			return len(ours()) >= 3
		}
		n, _, err := cg.OOMs()
		return err == nil && n-ooms0 >= 100
	}
	start := time.Now()
	for deadline := start.Add(20 * time.Second); !enough() && time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		select {
		case <-hog.Done():
			deadline = time.Now()
		default:
		}
	}
	_ = hog.Cmd.Process.Kill() // the test ends the livelock, or the VM would spin on it
	killed, err := hog.Wait()
	if err != nil {
		t.Fatal(err)
	}
	elapsed := time.Since(start)
	stop()
	ooms, _, err := cg.OOMs()
	if err != nil {
		t.Fatal(err)
	}
	if n := c.delta(t, 0); n != 0 {
		t.Errorf("the kernel counted %d kills in a cgroup with nothing killable", n)
	}
	var kills int
	out.lines(t, "oom_kill", func(b []byte) {
		var k event.Kill
		if err := json.Unmarshal(b, &k); err == nil && k.Victim.Cgroup.ID == cg.ID {
			kills++
		}
	})
	if kills != 0 {
		t.Errorf("%d oom_kill lines for the cgroup", kills)
	}

	lines := ours()
	repeats := 0
	for _, l := range lines {
		repeats += l.Repeats
		t.Logf("oom_no_kill at %s: repeats %d, %d weighed, %d unkillable (%v), constraint %v", l.Time.Format("15:04:05.000"), l.Repeats, l.CandidatesTotal, l.CandidatesUnkillable, fmtPtr64(l.CandidatesSource), fmtPtr64(l.OOM.Constraint))
	}
	t.Logf("hog killed by the test: %t after %v; %d lines, %d decisions; the kernel counted %d OOMs", killed, elapsed.Round(time.Millisecond), len(lines), repeats, ooms-ooms0)
	if !hooked {
		// Nothing hooks out_of_memory(): no line can come, and none may.
		if len(lines) != 0 {
			t.Errorf("%d oom_no_kill lines without out_of_memory() hooked", len(lines))
		}
		t.Skipf("oom_no_kill needs out_of_memory() hooked; attach mode %s hooks only mark_victim (the no-kill count above is checked)", started.Attach)
	}
	if ooms == ooms0 {
		t.Fatal("the kernel counted no OOM in the cgroup: the test provoked none")
	}
	if len(lines) == 0 || repeats == 0 {
		t.Fatalf("the kernel counted %d OOMs without a kill, the daemon wrote %d oom_no_kill lines", ooms-ooms0, len(lines))
	}
	// Each decision counted once, none invented: the kernel counts every
	// OOM of the cgroup, also those it settled before choosing (a dying
	// task, memory freed meanwhile).
	if uint64(repeats) > ooms-ooms0 {
		t.Errorf("%d no-kill decisions in the lines, the kernel counted %d OOMs", repeats, ooms-ooms0)
	}
	// One line per second at most, plus the one at shutdown.
	if max := int(elapsed/time.Second) + 2; len(lines) > max {
		t.Errorf("%d lines in %v, want at most %d", len(lines), elapsed, max)
	}
	for i, l := range lines {
		found := false
		for _, c := range l.Candidates {
			if !c.Unkillable || c.Score != nil {
				t.Errorf("a killable candidate in a decision that chose nobody: %+v", c)
			}
			if c.Comm == "nokill-hog" {
				found = true
				if c.OOMScoreAdj != -1000 {
					t.Errorf("the hog as a candidate: %+v", c)
				}
			}
		}
		// The last line may be of the hog's exit, when the cgroup is empty.
		if i < len(lines)-1 && (!found || l.CandidatesUnkillable < 1) {
			t.Errorf("line without the unkillable hog: %+v", l)
		}
		if l.OOM.Constraint == nil || *l.OOM.Constraint != "memcg" {
			t.Errorf("constraint %v, want memcg", fmtPtr64(l.OOM.Constraint))
		}
	}
}

// startDaemon runs the daemon in-process, in the attach mode the
// environment forces, until stop (or the test's end). It returns once the
// daemon is ready, with its output and its oomtrace_started line.
func startDaemon(t *testing.T) (out *lockedBuffer, started event.Started, stop func()) {
	t.Helper()
	return startDaemonWith(t, func(*daemon.Config) {})
}

// startDaemonWith is startDaemon with edit's changes to the configuration.
func startDaemonWith(t *testing.T, edit func(*daemon.Config)) (out *lockedBuffer, started event.Started, stop func()) {
	t.Helper()
	out = &lockedBuffer{}
	ready := filepath.Join(t.TempDir(), "ready")
	ctx, cancel := context.WithCancel(context.Background())
	cfg := daemon.Config{
		Format: "json", ReadyFile: ready, Docker: "off", QueueSize: daemon.DefaultQueueSize,
		Tracer: tracer.Config{
			KillHook: tracer.KillHook(os.Getenv("OOMTRACE_TEST_KILL_HOOK")),
			MarkHook: tracer.MarkHook(os.Getenv("OOMTRACE_TEST_MARK_HOOK")),
		},
		CRI: "off",
	}
	edit(&cfg)
	done := make(chan error, 1)
	go func() { done <- daemon.Run(ctx, cfg, out) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("daemon: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if _, err := os.Stat(ready); err == nil {
			break
		}
		select {
		case err := <-done:
			done <- nil // for stop, at cleanup
			t.Fatalf("the daemon stopped before it was ready: %v", err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("the daemon was not ready in 30s")
		}
	}
	out.lines(t, "oomtrace_started", func(b []byte) {
		if err := json.Unmarshal(b, &started); err != nil {
			t.Fatal(err)
		}
	})
	return out, started, stop
}

func fmtPtr64[T any](p *T) any {
	if p == nil {
		return nil
	}
	return *p
}
