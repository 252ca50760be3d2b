package dockertest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/oomtrace/oomtrace/internal/testdaemon"
)

// systemHost is where a Docker engine of the machine itself answers.
const systemHost = "unix:///var/run/docker.sock"

// label marks every container this package runs, so that Main can remove
// leftovers from an engine it does not own.
var label = "oomtrace.dockertest=" + strconv.Itoa(os.Getpid())

// Env is a Docker engine the tests of this binary share.
type Env struct {
	Host string // the engine's address, for DOCKER_HOST or a client: unix:///...
	cli  string // the docker CLI
	d    *daemon

	imageOnce sync.Once
	image     string
	imageErr  error

	startTook, imageTook time.Duration // for the tests' logs
}

var (
	mainCalled bool
	shared     struct {
		once sync.Once
		env  *Env
		err  error
	}
)

// Main runs the tests, then stops the engine this package started (or
// removes its containers and image from a system engine). Call it from
// TestMain.
func Main(m *testing.M) {
	mainCalled = true
	testdaemon.Main(m, "dockertest", shutdown)
}

// RequireDocker returns the shared engine, installing and starting Docker on
// first use. It skips without root, or inside the test VM (no Docker there),
// and fails when Docker cannot be installed or started: a machine where the
// tests are meant to run must not pass by skipping them.
func RequireDocker(tb testing.TB) *Env {
	tb.Helper()
	if os.Geteuid() != 0 {
		tb.Skip("needs root: runs a Docker engine and containers (run `make test` as root)")
	}
	if os.Getenv("OOMTRACE_VM") == "1" {
		tb.Skip("no Docker engine in the test VM")
	}
	if !mainCalled {
		tb.Fatal("dockertest: TestMain must call dockertest.Main(m), which stops the shared engine at the end")
	}
	shared.once.Do(func() { shared.env, shared.err = setup() })
	if shared.err != nil {
		tb.Fatalf("docker engine: %v", shared.err)
	}
	return shared.env
}

func setup() (*Env, error) {
	if err := ensurePackages(); err != nil {
		return nil, err
	}
	cli, err := exec.LookPath("docker")
	if err != nil {
		return nil, fmt.Errorf("docker CLI: %w", err)
	}
	e := &Env{Host: systemHost, cli: cli}
	if e.ping(5*time.Second) == nil {
		return e, nil
	}
	d, err := newDaemon()
	if err != nil {
		return nil, err
	}
	t0 := time.Now()
	if err := d.start(); err != nil {
		_ = d.remove()
		return nil, err
	}
	e.Host, e.d, e.startTook = d.host(), d, time.Since(t0)
	return e, nil
}

// ping asks the engine for its version, the cheapest call that needs it up.
func (e *Env) ping(timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	_, err := e.Docker(ctx, "version", "--format", "{{.Server.Version}}")
	return err
}

func shutdown() error {
	e := shared.env
	if e == nil {
		return nil
	}
	if e.d != nil {
		// Everything the tests made lives in the daemon's private directory.
		return e.d.remove()
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ids, err := e.Docker(ctx, "ps", "-aq", "--no-trunc", "--filter", "label="+label)
	if err != nil {
		return err
	}
	if ids != "" {
		args := append([]string{"rm", "-f"}, strings.Fields(ids)...)
		if _, err := e.Docker(ctx, args...); err != nil {
			return err
		}
	}
	if e.image != "" {
		if _, err := e.Docker(ctx, "rmi", e.image); err != nil {
			return err
		}
	}
	return nil
}

// Owned reports whether this package started the engine, and so may stop it.
func (e *Env) Owned() bool { return e.d != nil }

// StopDaemon stops the engine, for tests of a Docker that goes away. It skips
// the test on a system engine, which is not the tests' to stop. The engine is
// started again when the test ends if the test did not do it.
func (e *Env) StopDaemon(tb testing.TB) {
	tb.Helper()
	if e.d == nil {
		tb.Skip("the Docker engine is the machine's own (" + systemHost + "): not stopping it")
	}
	if err := e.d.stop(); err != nil {
		tb.Fatalf("stopping dockerd: %v", err)
	}
	tb.Cleanup(func() {
		if !e.d.running() {
			if err := e.d.start(); err != nil {
				tb.Errorf("starting dockerd again: %v", err)
			}
		}
	})
}

// StartDaemon starts the engine StopDaemon stopped, with the same state:
// containers and images survive, as over a real daemon restart.
func (e *Env) StartDaemon(tb testing.TB) {
	tb.Helper()
	if e.d == nil {
		tb.Skip("the Docker engine is the machine's own: not restarting it")
	}
	if err := e.d.start(); err != nil {
		tb.Fatalf("starting dockerd: %v", err)
	}
}
