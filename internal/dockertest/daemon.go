package dockertest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/oomtrace/oomtrace/internal/testdaemon"
)

// daemon is a dockerd this package started, with all its state under dir:
// socket, data root (images, containers), exec root (its containerd, runc
// state) and log. Nothing of a system Docker is shared.
type daemon struct {
	dir  string
	lock *os.File // flock held while the directory is in use
	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{} // closed when cmd has exited
}

func newDaemon() (*daemon, error) {
	sweep()
	dir, err := os.MkdirTemp("", "oomtrace-docker-")
	if err != nil {
		return nil, fmt.Errorf("creating the daemon's directory: %w", err)
	}
	// Held until this process exits: the directory is in use while locked.
	lock, err := os.Create(filepath.Join(dir, "owner.lock"))
	if err == nil {
		err = syscall.Flock(int(lock.Fd()), syscall.LOCK_EX)
	}
	if err != nil {
		_ = os.RemoveAll(dir)
		return nil, fmt.Errorf("locking the daemon's directory: %w", err)
	}
	return &daemon{dir: dir, lock: lock}, nil
}

// sweep removes the directories of test binaries that died without cleaning
// up (their dockerd stopped with them, see start): the ones whose lock is
// free. Those of live ones, maybe another package's tests running beside
// us, stay.
func sweep() {
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), "oomtrace-docker-*"))
	for _, dir := range dirs {
		lock, err := os.Open(filepath.Join(dir, "owner.lock"))
		if err != nil {
			continue // not ours, or being created
		}
		if syscall.Flock(int(lock.Fd()), syscall.LOCK_EX|syscall.LOCK_NB) == nil {
			killMentioning(dir)
			killContainers(dir)
			unmountUnder(dir)
			_ = os.RemoveAll(dir)
		}
		lock.Close()
	}
}

func (d *daemon) sock() string    { return filepath.Join(d.dir, "docker.sock") }
func (d *daemon) host() string    { return "unix://" + d.sock() }
func (d *daemon) logPath() string { return filepath.Join(d.dir, "dockerd.log") }

func (d *daemon) args() []string {
	ns := "oomtrace-test-" + strconv.Itoa(os.Getpid())
	return []string{
		// What runs on these machines (shared/KERNEL-NOTES.md): no iptables,
		// no bridge, and vfs, which needs no overlayfs; our image is 5 MB, so
		// its copies are cheap.
		"--iptables=false", "--ip6tables=false", "--bridge=none", "--storage-driver=vfs",
		"--data-root", filepath.Join(d.dir, "data"),
		"--exec-root", filepath.Join(d.dir, "exec"),
		"--pidfile", filepath.Join(d.dir, "dockerd.pid"),
		"--host", d.host(),
		// dockerd uses a system containerd when one runs; a namespace of our
		// own keeps clear of a system Docker's "moby" there.
		"--containerd-namespace", ns, "--containerd-plugins-namespace", ns + "-plugins",
		// Containers still running at a stop get 2 s, not 15.
		"--shutdown-timeout", "2",
	}
}

func (d *daemon) running() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.cmd != nil
}

// start runs dockerd and waits until it answers.
func (d *daemon) start() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.cmd != nil {
		return errors.New("dockerd is already running")
	}
	cmd := exec.Command("/usr/sbin/dockerd", d.args()...)
	// dockerd finds containerd, runc and docker-init on PATH.
	cmd.Env = append(os.Environ(), "PATH="+os.Getenv("PATH")+":/usr/sbin:/usr/bin:/sbin:/bin")
	done, err := testdaemon.Start(cmd, d.logPath())
	if err != nil {
		return fmt.Errorf("starting dockerd: %w", err)
	}
	d.cmd, d.done = cmd, done
	if err := d.waitReady(30 * time.Second); err != nil {
		_ = d.stopLocked()
		return err
	}
	return nil
}

// waitReady polls the API's /_ping until it answers OK, dockerd exits, or
// the timeout passes.
func (d *daemon) waitReady(timeout time.Duration) error {
	c := &http.Client{Timeout: time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var dl net.Dialer
			return dl.DialContext(ctx, "unix", d.sock())
		},
	}}
	defer c.CloseIdleConnections()
	deadline := time.Now().Add(timeout)
	for {
		if resp, err := c.Get("http://docker/_ping"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-d.done:
			return fmt.Errorf("dockerd exited while starting; its log ends: %s", d.logTail())
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("dockerd did not answer on %s within %v; its log ends: %s", d.sock(), timeout, d.logTail())
		}
	}
}

func (d *daemon) stop() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.stopLocked()
}

// stopLocked stops dockerd with SIGTERM, which also stops its containers and
// the containerd it started, and kills all that if it hangs.
func (d *daemon) stopLocked() error {
	if d.cmd == nil {
		return nil
	}
	var err error
	_ = d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-d.done:
	case <-time.After(30 * time.Second):
		_ = d.cmd.Process.Kill()
		<-d.done
		// A clean stop leaves nothing behind; a kill leaves containerd, the
		// shims and the containers.
		killMentioning(d.dir)
		killContainers(d.dir)
		err = errors.New("dockerd did not stop in 30s on SIGTERM; killed it")
	}
	d.cmd = nil
	return err
}

// remove stops dockerd and deletes its state. dockerd bind-mounts its data
// root (and containers' /dev/shm) and a killed one leaves them: unmount
// first, so that deleting never reaches through a mount.
func (d *daemon) remove() error {
	err := d.stop()
	unmountUnder(d.dir)
	err = errors.Join(err, os.RemoveAll(d.dir))
	d.lock.Close()
	return err
}

func (d *daemon) logTail() string {
	data, _ := os.ReadFile(d.logPath())
	return tail(data)
}

// killMentioning SIGKILLs the processes whose command line contains s.
func killMentioning(s string) {
	procs, _ := os.ReadDir("/proc")
	for _, p := range procs {
		pid, err := strconv.Atoi(p.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		if cmdline, err := os.ReadFile("/proc/" + p.Name() + "/cmdline"); err == nil && strings.Contains(string(cmdline), s) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
}

// killContainers kills the processes left in the containers of a daemon
// that was killed, found by their cgroup path (it holds the container id),
// and removes those cgroups.
func killContainers(dir string) {
	entries, _ := os.ReadDir(filepath.Join(dir, "data", "containers"))
	if len(entries) == 0 {
		return
	}
	procs, _ := os.ReadDir("/proc")
	for _, p := range procs {
		pid, err := strconv.Atoi(p.Name())
		if err != nil {
			continue
		}
		cg, _ := os.ReadFile("/proc/" + p.Name() + "/cgroup")
		for _, e := range entries {
			if strings.Contains(string(cg), e.Name()) {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
		}
	}
	for _, e := range entries {
		// cgroup v1: one per controller; v2: one. Empty once the kills land.
		cgs, _ := filepath.Glob("/sys/fs/cgroup/*/docker/" + e.Name())
		for _, cg := range append(cgs, "/sys/fs/cgroup/docker/"+e.Name()) {
			for i := 0; i < 50; i++ {
				if err := os.Remove(cg); err == nil || errors.Is(err, os.ErrNotExist) {
					break
				}
				time.Sleep(20 * time.Millisecond)
			}
		}
	}
}

// unmountUnder detaches every mount at or below dir, deepest first.
func unmountUnder(dir string) {
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return
	}
	var points []string
	for _, line := range strings.Split(string(data), "\n") {
		if f := strings.Fields(line); len(f) > 4 && (f[4] == dir || strings.HasPrefix(f[4], dir+"/")) {
			points = append(points, f[4])
		}
	}
	slices.SortFunc(points, func(a, b string) int { return len(b) - len(a) })
	for _, p := range points {
		_ = syscall.Unmount(p, syscall.MNT_DETACH)
	}
}
