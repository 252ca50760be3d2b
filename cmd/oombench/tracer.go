package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/oomtrace/oomtrace/event"
	"github.com/oomtrace/oomtrace/kernel/procfs"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"golang.org/x/sys/unix"
)

// tracerProc is a running oomtrace binary whose oom_kill lines are counted.
type tracerProc struct {
	proc
	startup     time.Duration
	dir         string
	metricsAddr string // from the startup line; under proc.mu
	attachMode  string // from the startup line; under proc.mu
}

// attach is the startup line's attach mode.
func (t *tracerProc) attach() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.attachMode
}

func startTracer(bin string, args ...string) (*tracerProc, error) {
	dir, err := os.MkdirTemp("", "oomtrace-bench-")
	if err != nil {
		return nil, err
	}
	ready := filepath.Join(dir, "ready")
	cmd := exec.Command(bin, append([]string{"--ready-file", ready, "--metrics-addr", "127.0.0.1:0", "--state-dir", ""}, args...)...)
	t := &tracerProc{dir: dir}
	err = t.start(cmd, func(line []byte) {
		// Through the schema's own types: the message first, then its line.
		var head struct{ Message string }
		if json.Unmarshal(line, &head) != nil {
			return
		}
		switch head.Message {
		case (event.Started{}).Name():
			var ev event.Started
			if json.Unmarshal(line, &ev) == nil {
				t.mu.Lock()
				t.metricsAddr, t.attachMode = ev.MetricsAddr, ev.Attach
				t.mu.Unlock()
			}
		case (event.Kill{}).Name():
			var ev event.Kill
			if json.Unmarshal(line, &ev) == nil {
				t.record(ev.Kills, time.Duration(clockNs(unix.CLOCK_BOOTTIME)-ev.BootNs))
			}
		}
	})
	if err != nil {
		return nil, err
	}
	start := t.started
	for {
		if _, err := os.Stat(ready); err == nil {
			t.startup = time.Since(start)
			return t, nil
		}
		if time.Since(start) > 30*time.Second {
			t.stop()
			return nil, fmt.Errorf("%s not ready after 30s", bin)
		}
		time.Sleep(200 * time.Microsecond)
	}
}

func (t *tracerProc) stop() error {
	defer os.RemoveAll(t.dir)
	if t.cmd.ProcessState != nil {
		return nil
	}
	_ = t.cmd.Process.Signal(syscall.SIGTERM)
	<-t.done
	return t.cmd.Wait()
}

// latency reads the daemon's own oomtrace_kill_latency_seconds histogram
// of stage: the cumulative count at each bucket bound, and the total.
func (t *tracerProc) latency(stage string) (histogram, error) {
	t.mu.Lock()
	addr := t.metricsAddr
	t.mu.Unlock()
	if addr == "" {
		return histogram{}, fmt.Errorf("no metrics_addr in the tracer's startup line")
	}
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		return histogram{}, err
	}
	defer resp.Body.Close()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		return histogram{}, fmt.Errorf("parsing the tracer's metrics: %w", err)
	}
	h := histogram{le: map[float64]uint64{}}
	for _, m := range families["oomtrace_kill_latency_seconds"].GetMetric() {
		for _, l := range m.GetLabel() {
			if l.GetName() == "stage" && l.GetValue() == stage {
				h.count = m.GetHistogram().GetSampleCount()
				for _, b := range m.GetHistogram().GetBucket() {
					h.le[b.GetUpperBound()] = b.GetCumulativeCount()
				}
			}
		}
	}
	return h, nil
}

// histogram is a Prometheus histogram's cumulative counts by upper bound.
type histogram struct {
	le    map[float64]uint64
	count uint64
}

// since is what was observed after base.
func (h histogram) since(base histogram) histogram {
	d := histogram{le: map[float64]uint64{}, count: h.count - base.count}
	for b, n := range h.le {
		d.le[b] = n - base.le[b]
	}
	return d
}

// within says how many observations took at most bound, as "n of m".
func (h histogram) within(bound time.Duration) string {
	return fmt.Sprintf("%d of %d", h.le[bound.Seconds()], h.count)
}

// waitKills waits until want kills were printed (or the timeout), then a
// moment more so a duplicate would show.
func (t *tracerProc) waitKills(want int, timeout time.Duration) int {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		t.mu.Lock()
		n := t.kills
		t.mu.Unlock()
		if n >= want {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(500 * time.Millisecond)
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.kills
}

// memory returns VmRSS and VmHWM of a process in KiB.
func memory(pid int) (rss, hwm int) {
	st, _ := procfs.ReadStatus(pid)
	return int(st.RSSKB), int(st.HWMKB)
}

// contextSwitches sums voluntary and involuntary switches of every thread.
func contextSwitches(pid int) int {
	tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/status", pid))
	total := 0
	for _, p := range tasks {
		st, _ := procfs.ReadStatusFile(p)
		total += int(st.CtxtSwitches)
	}
	return total
}

// cpuTime is the CPU time of every thread of pid, in nanoseconds from
// schedstat: /proc/PID/stat's utime and stime count whole ticks (10 ms),
// too coarse for a tracer that spends tens of milliseconds on a storm.
func cpuTime(pid int) time.Duration {
	tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/schedstat", pid))
	var total time.Duration
	for _, t := range tasks {
		if f := strings.Fields(readTrim(t)); len(f) > 0 {
			ns, _ := strconv.ParseInt(f[0], 10, 64)
			total += time.Duration(ns)
		}
	}
	return total
}

func readTrim(path string) string {
	data, _ := os.ReadFile(path)
	return strings.TrimSpace(string(data))
}

func cpuModel() string {
	for _, line := range strings.Split(readTrim("/proc/cpuinfo"), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown CPU"
}

func numCPU() int { return runtime.NumCPU() }
