// Package testdaemon runs the private daemons the tests talk to (dockerd,
// containerd): started once per test binary, tied to its life, and stopped
// after its last test.
package testdaemon

import (
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"syscall"
	"testing"
)

// Main runs m's tests, then shutdown, and exits; a failed shutdown fails
// the run, named by pkg. A hook at the end of the binary, not at some
// test's cleanup: the daemon is shared, and which test ends last is not
// known (parallel tests, -run, -count).
func Main(m *testing.M, pkg string, shutdown func() error) {
	code := m.Run()
	if err := shutdown(); err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", pkg, err)
		if code == 0 {
			code = 1
		}
	}
	os.Exit(code)
}

// Start starts cmd with its stdout and stderr appended to logPath. done is
// closed once cmd has exited.
//
// Pdeathsig: the daemon stops when the test binary dies without running
// Main's shutdown, e.g. killed on -timeout. Setpgid: a Ctrl-C to the
// terminal reaches only the test binary, which then cleans up.
func Start(cmd *exec.Cmd, logPath string) (done chan struct{}, err error) {
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	started, done := make(chan error, 1), make(chan struct{})
	go func() {
		// Pdeathsig follows the thread that forked, not the process: keep
		// that thread alive for as long as the daemon runs.
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		err := cmd.Start()
		started <- err
		if err == nil {
			_ = cmd.Wait()
		}
		logf.Close()
		close(done)
	}()
	if err := <-started; err != nil {
		return nil, err
	}
	return done, nil
}
