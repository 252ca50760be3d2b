package main

// Fault tests of the binary: output stalled, output rotated, SIGTERM in the
// middle of a storm. Each checks that every kill is either written or counted
// as dropped, never lost silently.

import (
	"bufio"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/oomtrace/oomtrace/internal/oomtest"
)

// storm OOM-kills n hogs in cg, parallel at a time.
func storm(t *testing.T, cg *oomtest.Cgroup, n, parallel int) {
	t.Helper()
	var wg sync.WaitGroup
	sem := make(chan struct{}, parallel)
	for i := 0; i < n; i++ {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			p, err := oomtest.Hog{Cgroup: cg, MB: 128, Comm: "stormhog"}.Start(context.Background())
			if err != nil {
				t.Error(err)
				return
			}
			_, _ = p.Wait()
		}()
	}
	wg.Wait()
}

type tally struct{ kills, dropped, stopped int }

func count(t *testing.T, data []byte) tally {
	t.Helper()
	var c tally
	sc := bufio.NewScanner(bytesReader(data))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var ev struct {
			Message      string
			Dropped      int `json:"dropped"`
			QueueDropped int `json:"queue_dropped"`
		}
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			t.Fatalf("invalid JSON line %q: %v", sc.Text(), err)
		}
		switch ev.Message {
		case "oom_kill":
			c.kills++
		case "events_dropped":
			c.dropped += ev.Dropped
		case "oomtrace_stopped":
			c.stopped++
			if ev.QueueDropped != c.dropped {
				t.Errorf("stopped line says %d dropped, events_dropped lines %d", ev.QueueDropped, c.dropped)
			}
		}
	}
	return c
}

// A stalled stdout: the reader keeps going, the queue overflows, and the
// drops are reported once output flows again.
func TestBinaryOutputStalled(t *testing.T) {
	oomtest.RequireRoot(t)
	h := oomtest.MustHierarchy(t)
	bin := buildBinary(t)
	cg := oomtest.NewCgroup(t, h, nil, "stall", 32<<20)
	cmd, out, _ := launch(t, bin, nil, "--queue-size", "8")

	// Nobody reads stdout: once the pipe (64 KiB) and the queue (8) are
	// full, kills must be dropped and counted.
	before, _ := cg.OOMKills()
	storm(t, cg, 120, 4)
	after, _ := cg.OOMKills()
	// No wait for the reader: at SIGTERM it reads the ring buffer to its end.
	_ = cmd.Process.Signal(syscall.SIGTERM)
	data := readAll(t, out)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("exit after SIGTERM: %v", err)
	}
	c := count(t, data)
	if c.dropped == 0 {
		t.Errorf("no drops reported with a stalled output (%d kills written)", c.kills)
	}
	if uint64(c.kills+c.dropped) != after-before || c.stopped != 1 {
		t.Errorf("written %d + dropped %d, kernel counted %d; %d stopped lines", c.kills, c.dropped, after-before, c.stopped)
		for _, l := range strings.Split(string(data), "\n") {
			if !strings.Contains(l, `"message":"oom_kill"`) {
				t.Logf("  %.300s", l)
			}
		}
	}
}

// --output with logrotate: rename the file, SIGHUP, and the next kill lands
// in a new file.
func TestBinaryOutputReopen(t *testing.T) {
	oomtest.RequireRoot(t)
	h := oomtest.MustHierarchy(t)
	bin := buildBinary(t)
	cg := oomtest.NewCgroup(t, h, nil, "rotate", 64<<20)
	file := filepath.Join(t.TempDir(), "events.json")
	cmd, _, _ := launch(t, bin, nil, "--output", file)

	storm(t, cg, 1, 1)
	waitKills(t, file, 1)
	if err := os.Rename(file, file+".1"); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Process.Signal(syscall.SIGHUP)
	waitFile(t, file, nil) // reopened: a new file at the old name
	storm(t, cg, 1, 1)
	waitKills(t, file, 1)
	_ = cmd.Process.Signal(syscall.SIGTERM)
	if err := cmd.Wait(); err != nil {
		t.Fatal(err)
	}
	old, _ := os.ReadFile(file + ".1")
	cur, _ := os.ReadFile(file)
	if a, b := count(t, old), count(t, cur); a.kills != 1 || b.kills != 1 || b.stopped != 1 {
		t.Errorf("rotated file %+v, new file %+v: want one kill in each", a, b)
	}
}

// SIGTERM in the middle of a storm: the daemon writes what it has, says so,
// and exits 0 within a few seconds.
func TestBinarySIGTERMMidStorm(t *testing.T) {
	oomtest.RequireRoot(t)
	h := oomtest.MustHierarchy(t)
	bin := buildBinary(t)
	cg := oomtest.NewCgroup(t, h, nil, "sigterm", 32<<20)
	cmd, out, stderr := startBinary(t, bin)
	done := make(chan struct{})
	go func() { defer close(done); storm(t, cg, 60, 4) }()
	// Mid-storm: once the kernel has counted a few of its kills.
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if n, err := cg.OOMKills(); err == nil && n >= 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the storm killed nothing in 30s")
		}
	}
	start := time.Now()
	_ = cmd.Process.Signal(syscall.SIGTERM)
	<-out.done
	if err := cmd.Wait(); err != nil {
		t.Fatalf("exit: %v; %s", err, stderr.String())
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("took %v to stop", took)
	}
	<-done
	var data []byte
	for _, l := range out.snapshot() {
		data = append(data, l+"\n"...)
	}
	if c := count(t, data); c.stopped != 1 || c.kills == 0 {
		t.Errorf("%+v: want kills written before the stop and one stopped line", c)
	}
}

func waitKills(t *testing.T, path string, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		data, _ := os.ReadFile(path)
		if count(t, data).kills >= n {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("%s: fewer than %d kills", path, n)
}

// A ring buffer too small for a storm while the reader is stopped: records
// are lost in the kernel, and the stop line counts them, so that kills
// written plus records lost cover every kill the kernel counted.
func TestBinaryRingBufferFlooded(t *testing.T) {
	oomtest.RequireRoot(t)
	h := oomtest.MustHierarchy(t)
	bin := buildBinary(t)
	cg := oomtest.NewCgroup(t, h, nil, "flood", 32<<20)
	cmd, out, stderr := startBinary(t, bin, "--ringbuf-size", "4096") // about 16 records
	if err := cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	before, _ := cg.OOMKills()
	storm(t, cg, 40, 4)
	after, _ := cg.OOMKills()
	_ = cmd.Process.Signal(syscall.SIGCONT)
	// No wait for the reader: at SIGTERM it reads the ring buffer to its end.
	_ = cmd.Process.Signal(syscall.SIGTERM)
	<-out.done
	if err := cmd.Wait(); err != nil {
		t.Fatalf("exit: %v; %s", err, stderr.String())
	}
	written, lost := 0, 0
	for _, line := range out.snapshot() {
		var ev struct {
			Message     string
			Kills       int
			RecordsLost int `json:"records_lost"`
		}
		if err := json.Unmarshal([]byte(line), &ev); err != nil {
			t.Fatalf("invalid JSON %q", line)
		}
		switch ev.Message {
		case "oom_kill":
			written += ev.Kills
		case "oomtrace_stopped":
			lost = ev.RecordsLost
		}
	}
	counted := int(after - before)
	t.Logf("kernel %d kills; written %d, records lost %d", counted, written, lost)
	if lost == 0 {
		t.Errorf("no records lost with a 4 KiB ring buffer and the reader stopped during %d kills", counted)
	}
	if written > counted || written+lost < counted {
		t.Errorf("written %d + lost %d does not account for the kernel's %d kills", written, lost, counted)
	}
}

// A DOCKER_HOST that cannot be used is said once, and the daemon traces on.
func TestBinaryBadDockerHost(t *testing.T) {
	oomtest.RequireRoot(t)
	bin := buildBinary(t)
	cmd, out, stderr := startBinaryEnv(t, bin, []string{"DOCKER_HOST=not a url::"}, "--docker", "on")
	withMessage := func(msg string) int {
		n := 0
		for _, l := range out.snapshot() {
			if strings.Contains(l, `"message":"`+msg+`"`) {
				n++
			}
		}
		return n
	}
	deadline := time.Now().Add(10 * time.Second)
	for withMessage("docker_error") == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("no docker_error line for a bad DOCKER_HOST; stderr %s", stderr)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("daemon with a bad DOCKER_HOST did not run and stop cleanly: %v, stderr %s", err, stderr)
	}
	<-out.done
	if n := withMessage("docker_error"); n != 1 {
		t.Errorf("%d docker_error lines, want 1", n)
	}
	if withMessage("oomtrace_stopped") != 1 {
		t.Error("no oomtrace_stopped line")
	}
}
