package daemon

// The daemon's parts without root or a kernel: the writer, the queue's
// drain at shutdown, the output's reopen, the console format.

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/oomtrace/oomtrace/enrich"
	"github.com/oomtrace/oomtrace/event"
	"github.com/oomtrace/oomtrace/metrics"
	"github.com/rs/zerolog"
)

func testWriter(out *output) *writer {
	return &writer{
		log:      zerolog.New(out),
		enricher: enrich.New(nil, nil), // no cgroups, no Docker: what is missing is named
		metrics:  metrics.New(10, func() (uint64, error) { return 0, nil }),
		out:      out,
	}
}

// The writer turns a kill into one valid line, with what it could not
// enrich named, and counts a line it could not write.
func TestWriterWritesOneLinePerKill(t *testing.T) {
	var buf bytes.Buffer
	out, err := openOutput("", &buf)
	if err != nil {
		t.Fatal(err)
	}
	w := testWriter(out)
	k := sampleKill(true)
	// A kernel score far from the model's, past the drift its counters,
	// read after the scan, are allowed.
	far := *k.KernelScore * 3
	k.KernelScore = &far
	w.write(k)
	var msgs []string
	for _, l := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		var line map[string]any
		if err := json.Unmarshal([]byte(l), &line); err != nil {
			t.Fatalf("not a JSON line: %v: %q", err, l)
		}
		msgs = append(msgs, line["message"].(string))
		if line["message"] == "oom_kill" && line["kills"] != 2.0 {
			t.Errorf("kills %v, want 2 (victim and one group member)", line["kills"])
		}
	}
	if strings.Join(msgs, ",") != "oom_kill,score_mismatch" {
		t.Errorf("lines %v, want the kill then its score_mismatch warning", msgs)
	}

	failing, _ := openOutput("", failWriter{})
	w = testWriter(failing)
	w.write(sampleKill(false))
	if got := failing.failures.Load(); got != 1 {
		t.Errorf("%d output failures counted for a failed write, want 1", got)
	}
}

type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }

// A stalled output at shutdown: the drain gives up after its timeout, and
// every kill still queued is dropped and counted once, even when the writer
// unblocks afterwards.
func TestPipelineDrainTimeout(t *testing.T) {
	release := make(chan struct{})
	var mu sync.Mutex
	written := 0
	p := startPipeline(8, stages{handle: func(item) {
		<-release // the output is stalled
		mu.Lock()
		written++
		mu.Unlock()
	}})
	for i := 0; i < 20; i++ {
		p.push(item{})
	}
	start := time.Now()
	p.closeWithin(50 * time.Millisecond)
	if took := time.Since(start); took > 5*time.Second {
		t.Fatalf("drain took %v past its timeout", took)
	}
	close(release) // the writer unblocks: it writes the one in hand, nothing more
	<-p.done
	mu.Lock()
	defer mu.Unlock()
	if total := uint64(written) + p.dropped.Load(); total != 20 {
		t.Errorf("written %d + dropped %d = %d, want every one of the 20 kills once", written, p.dropped.Load(), total)
	}
	if written != 1 {
		t.Errorf("written %d after the drain gave up, want only the one in hand", written)
	}
}

// A drain with a flowing output writes everything.
func TestPipelineDrainsAll(t *testing.T) {
	n := 0
	p := startPipeline(8, stages{handle: func(item) { n++ }})
	for i := 0; i < 5; i++ {
		p.push(item{})
	}
	p.closeWithin(time.Minute)
	if n != 5 || p.dropped.Load() != 0 {
		t.Errorf("written %d, dropped %d; want 5 and 0", n, p.dropped.Load())
	}
}

// Reopen after logrotate: a new file at the old path. A path that cannot be
// opened is an error, and the old file keeps the lines.
func TestOutputReopen(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "events.json")
	out, err := openOutput(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	if _, err := out.Write([]byte("one\n")); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(path, path+".1"); err != nil {
		t.Fatal(err)
	}
	if err := out.Reopen(); err != nil {
		t.Fatal(err)
	}
	if _, err := out.Write([]byte("two\n")); err != nil {
		t.Fatal(err)
	}
	if old, _ := os.ReadFile(path + ".1"); string(old) != "one\n" {
		t.Errorf("rotated file %q", old)
	}
	if cur, _ := os.ReadFile(path); string(cur) != "two\n" {
		t.Errorf("new file %q", cur)
	}

	// The directory is gone: reopen fails, lines still go to the open file.
	if err := os.Rename(dir, dir+".gone"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.Rename(dir+".gone", dir) })
	if err := out.Reopen(); err == nil || !strings.Contains(err.Error(), "opening output") {
		t.Fatalf("reopen into a missing directory: %v", err)
	}
	if _, err := out.Write([]byte("three\n")); err != nil {
		t.Fatal(err)
	}
	if cur, _ := os.ReadFile(filepath.Join(dir+".gone", "events.json")); string(cur) != "two\nthree\n" {
		t.Errorf("after a failed reopen the old file has %q", cur)
	}
}

// --format console is for people: a kill is one sentence, other lines
// zerolog's console format; neither is JSON, and no colour codes unless
// asked for.
func TestConsoleFormat(t *testing.T) {
	var buf bytes.Buffer
	log := newLogger(Config{Format: "console", LogLevel: zerolog.InfoLevel}, &buf, false)
	logKill(log, sampleKill(true), sampleResult())
	golden, err := os.ReadFile("testdata/console.golden")
	if err != nil {
		t.Fatal(err)
	}
	if buf.String() != string(golden) {
		t.Errorf("console kill line:\n got %q\nwant %q", buf.String(), golden)
	}
	buf.Reset()
	event.Write(log, zerolog.WarnLevel, event.NewDiagnostic("docker_error", errors.New("down")))
	if line := buf.String(); json.Valid(buf.Bytes()) || !strings.Contains(line, "docker_error") || !strings.Contains(line, "down") || strings.Contains(line, "\x1b[") {
		t.Errorf("console diagnostic %q", line)
	}
	buf.Reset()
	log.Debug().Msg("hidden")
	if buf.Len() != 0 {
		t.Errorf("a debug line at level info: %q", buf.String())
	}
	buf.Reset()
	colored := newLogger(Config{Format: "console", LogLevel: zerolog.InfoLevel}, &buf, true)
	logKill(colored, sampleKill(true), sampleResult())
	if !strings.Contains(buf.String(), "\x1b[") {
		t.Errorf("colour asked for, none written: %q", buf.String())
	}
}

func TestColorOnlyForATerminal(t *testing.T) {
	f, err := os.CreateTemp(t.TempDir(), "out")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if colorFor(Config{}, f) {
		t.Error("colour for a regular file")
	}
	if colorFor(Config{}, &bytes.Buffer{}) {
		t.Error("colour for a buffer")
	}
	if colorFor(Config{Output: "/x"}, os.Stdout) {
		t.Error("colour with --output")
	}
	t.Setenv("NO_COLOR", "")
	if colorFor(Config{}, os.Stdout) {
		t.Error("colour with NO_COLOR set (empty counts)")
	}
}
