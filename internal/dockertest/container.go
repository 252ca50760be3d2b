package dockertest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/oomtrace/oomtrace/internal/workload"
)

// RunOpts says how to run a container of the test image.
type RunOpts struct {
	Name     string            // --name; "" lets Docker pick one
	Labels   map[string]string // --label
	Env      []string          // KEY=VALUE
	MemoryMB int               // --memory and --memory-swap (no swap); 0 means 64
	Remove   bool              // --rm: Docker removes it once it exits
	Cmd      []string          // default: /bin/oomhog with no flags; see HogCmd
}

// HogCmd runs /bin/oomhog to allocate mb MiB with threads threads named
// comm. In a 64 MiB container, mb=256 gets it OOM-killed; it exits 3 if not.
func HogCmd(mb, threads int, comm string) []string {
	return append([]string{"/bin/oomhog"}, workload.Hog{MB: mb, Threads: threads, Comm: comm}.Args()...)
}

// ExitOOMKilled is a container's exit code after SIGKILL, which is how the
// OOM killer ends it.
const ExitOOMKilled = 137

// Start runs a container in the background and returns its full id. It is
// removed when the test ends.
func (e *Env) Start(tb testing.TB, o RunOpts) string {
	tb.Helper()
	id, err := e.Docker(e.ctx(tb), e.runArgs(tb, o, "-d")...)
	if err != nil {
		tb.Fatal(err)
	}
	e.removeAtEnd(tb, id)
	return id
}

// RunWait runs a container until it exits and returns its full id and exit
// code. The id is known even when the container was run with Remove and is
// gone already.
func (e *Env) RunWait(tb testing.TB, o RunOpts) (id string, exitCode int) {
	tb.Helper()
	cidfile := filepath.Join(tb.TempDir(), "cid")
	args := append([]string{"--host", e.Host}, e.runArgs(tb, o, "--cidfile", cidfile)...)
	cmd := exec.CommandContext(e.ctx(tb), e.cli, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err := cmd.Run()
	data, rerr := os.ReadFile(cidfile)
	if rerr != nil {
		tb.Fatalf("docker run: %v: %s (no container id: %v)", err, strings.TrimSpace(stderr.String()), rerr)
	}
	id = strings.TrimSpace(string(data))
	e.removeAtEnd(tb, id)
	if err == nil {
		return id, 0
	}
	// docker run's own failures are 125 (docker), 126 and 127 (the command).
	var ee *exec.ExitError
	if errors.As(err, &ee) && (ee.ExitCode() < 125 || ee.ExitCode() > 127) {
		return id, ee.ExitCode()
	}
	tb.Fatalf("docker run: %v: %s", err, strings.TrimSpace(stderr.String()))
	return "", 0
}

func (e *Env) runArgs(tb testing.TB, o RunOpts, extra ...string) []string {
	mb := o.MemoryMB
	if mb == 0 {
		mb = 64
	}
	mem := strconv.Itoa(mb) + "m"
	// --stop-timeout 1: a stop, or dockerd shutting down, waits 1 s, not 10,
	// for a container that ignores SIGTERM (busybox sleep as pid 1 does).
	args := append([]string{"run", "--memory", mem, "--memory-swap", mem, "--stop-timeout", "1", "--label", label}, extra...)
	if o.Name != "" {
		args = append(args, "--name", o.Name)
	}
	for k, v := range o.Labels {
		args = append(args, "--label", k+"="+v)
	}
	for _, kv := range o.Env {
		args = append(args, "--env", kv)
	}
	if o.Remove {
		args = append(args, "--rm")
	}
	args = append(args, e.Image(tb))
	if len(o.Cmd) == 0 {
		return append(args, "/bin/oomhog")
	}
	return append(args, o.Cmd...)
}

func (e *Env) removeAtEnd(tb testing.TB, id string) {
	tb.Cleanup(func() {
		if _, err := e.Docker(context.Background(), "rm", "-f", "-v", id); err != nil && !isNoSuch(err) {
			tb.Errorf("removing container: %v", err)
		}
	})
}

// State is the part of `docker inspect` the tests read.
type State struct {
	Status    string
	Running   bool
	OOMKilled bool
	ExitCode  int
}

// ErrNoSuchContainer is what Inspect returns for a container that is gone.
var ErrNoSuchContainer = errors.New("no such container")

// Inspect reads a container's state.
func (e *Env) Inspect(ctx context.Context, id string) (State, error) {
	out, err := e.Docker(ctx, "inspect", "--type", "container", "--format", "{{json .State}}", id)
	if isNoSuch(err) {
		return State{}, fmt.Errorf("%w: %s", ErrNoSuchContainer, id)
	}
	if err != nil {
		return State{}, err
	}
	var s State
	if err := json.Unmarshal([]byte(out), &s); err != nil {
		return State{}, fmt.Errorf("decoding docker inspect: %w", err)
	}
	return s, nil
}

// WaitRemoved waits until the container is gone, as after a --rm run.
func (e *Env) WaitRemoved(tb testing.TB, id string, timeout time.Duration) {
	tb.Helper()
	deadline := time.Now().Add(timeout)
	for {
		_, err := e.Inspect(e.ctx(tb), id)
		if errors.Is(err, ErrNoSuchContainer) {
			return
		}
		if time.Now().After(deadline) {
			tb.Fatalf("container %.12s not removed within %v (last: %v)", id, timeout, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Docker runs the docker CLI against this engine and returns its output,
// trimmed; its error carries the CLI's stderr.
func (e *Env) Docker(ctx context.Context, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, e.cli, append([]string{"--host", e.Host}, args...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("docker %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return strings.TrimSpace(string(out)), nil
}

func isNoSuch(err error) bool {
	return err != nil && strings.Contains(strings.ToLower(err.Error()), "no such")
}

// ctx bounds one CLI call of a test: a hung engine fails the test instead of
// hanging it until go test's -timeout.
func (e *Env) ctx(tb testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	tb.Cleanup(cancel)
	return ctx
}
