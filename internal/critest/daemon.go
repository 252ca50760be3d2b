package critest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/credentials/insecure"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/oomtrace/oomtrace/internal/testdaemon"
)

// Where the tools are: Debian's containerd package, and runc, which it
// depends on. Absolute paths, so that a test never runs some other build
// that happens to be first on PATH.
const (
	containerdBin = "/usr/bin/containerd"
	ctrBin        = "/usr/bin/ctr"
	runcBin       = "/usr/sbin/runc"
)

// criNamespace is the containerd namespace the CRI plugin keeps its pods,
// containers and images in; ctr must import images there for the CRI plugin
// to see them.
const criNamespace = "k8s.io"

// dirPrefix names this package's directories under os.TempDir, so that sweep
// finds those of dead runs.
const dirPrefix = "oomtrace-critest-"

// daemon is a containerd this package started, with all its state under dir.
type daemon struct {
	dir  string
	lock *os.File // flock held while the directory is in use
	cmd  *exec.Cmd
	done chan struct{} // closed when cmd has exited
	conn *grpc.ClientConn
}

func (d *daemon) sock() string       { return filepath.Join(d.dir, "containerd.sock") }
func (d *daemon) logPath() string    { return filepath.Join(d.dir, "containerd.log") }
func (d *daemon) configPath() string { return filepath.Join(d.dir, "config.toml") }

// journal lists what the tests created (pods with their cgroup parents,
// sandbox and container ids), one per line, appended before each is created:
// what a sweep of a dead run must clean beyond the directory itself.
func (d *daemon) journal() string { return filepath.Join(d.dir, "created") }

func newDaemon() (*daemon, error) {
	sweep()
	dir, err := os.MkdirTemp("", dirPrefix)
	if err != nil {
		return nil, fmt.Errorf("creating containerd's directory: %w", err)
	}
	// Held until this process exits (the kernel drops it then, however the
	// process ends): the directory is in use while locked.
	lock, err := os.Create(filepath.Join(dir, "owner.lock"))
	if err == nil {
		err = syscall.Flock(int(lock.Fd()), syscall.LOCK_EX)
	}
	if err != nil {
		_ = os.RemoveAll(dir)
		return nil, fmt.Errorf("locking containerd's directory: %w", err)
	}
	return &daemon{dir: dir, lock: lock}, nil
}

// config is containerd's configuration; see the package doc for why each
// setting.
func (d *daemon) config(sandboxImage string) string {
	p := func(elem ...string) string { return strconv.Quote(filepath.Join(append([]string{d.dir}, elem...)...)) }
	return `version = 2
root = ` + p("root") + `
state = ` + p("state") + `

[grpc]
  address = ` + p("containerd.sock") + `

[ttrpc]
  address = ` + p("containerd.sock.ttrpc") + `

[plugins]
  # Defaults to /opt/containerd: keep even that inside our directory.
  [plugins."io.containerd.internal.v1.opt"]
    path = ` + p("opt") + `

  [plugins."io.containerd.grpc.v1.cri"]
    sandbox_image = ` + strconv.Quote(sandboxImage) + `
    restrict_oom_score_adj = true
    disable_apparmor = true
    enable_selinux = false
    stream_server_address = "127.0.0.1"
    stream_server_port = "0"

    [plugins."io.containerd.grpc.v1.cri".containerd]
      snapshotter = "native"
      default_runtime_name = "runc"

      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
        runtime_type = "io.containerd.runc.v2"

        [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
          BinaryName = ` + strconv.Quote(runcBin) + `
          # Defaults to /run/containerd/runc, shared with a system containerd.
          Root = ` + p("runc") + `
          SystemdCgroup = false

    # Empty directories: a host's CNI configuration is never used (pods
    # have host networking).
    [plugins."io.containerd.grpc.v1.cri".cni]
      bin_dir = ` + p("cni", "bin") + `
      conf_dir = ` + p("cni", "net.d") + `
`
}

// start runs containerd and waits until its CRI service answers.
func (d *daemon) start(sandboxImage string) error {
	for _, sub := range []string{"cni/bin", "cni/net.d", "pods"} {
		if err := os.MkdirAll(filepath.Join(d.dir, sub), 0o755); err != nil {
			return err
		}
	}
	if err := os.WriteFile(d.configPath(), []byte(d.config(sandboxImage)), 0o644); err != nil {
		return err
	}
	cmd := exec.Command(containerdBin, "--config", d.configPath(), "--log-level", "info")
	// containerd finds containerd-shim-runc-v2 on PATH.
	cmd.Env = append(os.Environ(), "PATH=/usr/sbin:/usr/bin:/sbin:/bin")
	done, err := testdaemon.Start(cmd, d.logPath())
	if err != nil {
		return fmt.Errorf("starting containerd: %w", err)
	}
	d.cmd, d.done = cmd, done
	// A short reconnect backoff: the socket appears only once containerd has
	// loaded its plugins, and gRPC's default would wait a second after the
	// first failed attempt.
	conn, err := grpc.NewClient("unix://"+d.sock(), grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithConnectParams(grpc.ConnectParams{
			Backoff:           backoff.Config{BaseDelay: 10 * time.Millisecond, Multiplier: 1.6, MaxDelay: 200 * time.Millisecond},
			MinConnectTimeout: time.Second,
		}))
	if err != nil {
		return fmt.Errorf("gRPC client for %s: %w", d.sock(), err)
	}
	d.conn = conn
	return d.waitReady(30 * time.Second)
}

// waitReady polls the CRI Version call until it answers, containerd exits,
// or the timeout passes. Version answers only once the CRI plugin has loaded
// (a failing plugin is skipped by containerd, which still serves the rest).
func (d *daemon) waitReady(timeout time.Duration) error {
	rt := runtimeapi.NewRuntimeServiceClient(d.conn)
	deadline := time.Now().Add(timeout)
	var last error
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_, last = rt.Version(ctx, &runtimeapi.VersionRequest{})
		cancel()
		if last == nil {
			return nil
		}
		select {
		case <-d.done:
			return fmt.Errorf("containerd exited while starting; its log ends:\n%s", d.logTail())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("containerd's CRI service did not answer on %s within %v (%v); its log ends:\n%s", d.sock(), timeout, last, d.logTail())
		}
	}
}

// ctr runs ctr against this containerd in the CRI plugin's namespace.
func (d *daemon) ctr(ctx context.Context, args ...string) error {
	cmd := exec.CommandContext(ctx, ctrBin, slices.Concat([]string{"--address", d.sock(), "--namespace", criNamespace}, args)...)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("ctr %s: %w: %s", strings.Join(args, " "), err, tail(out))
	}
	return nil
}

// stop stops containerd with SIGTERM and kills it if it hangs. containerd
// leaves shims and containers running when it stops (by design: they
// survive a restart), so the pods must be gone before.
func (d *daemon) stop() error {
	if d.conn != nil {
		d.conn.Close()
		d.conn = nil
	}
	if d.cmd == nil {
		return nil
	}
	var err error
	_ = d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-d.done:
	case <-time.After(10 * time.Second):
		_ = d.cmd.Process.Kill()
		<-d.done
		err = errors.New("containerd did not stop in 10s on SIGTERM; killed it")
	}
	d.cmd = nil
	return err
}

// remove stops containerd and deletes everything it and the tests left:
// processes (shims, containers) still running, pod cgroups, shim sockets,
// mounts (rootfs binds, sandbox /dev/shm) and the directory. Unmounting
// comes first, so that deleting never reaches through a mount.
func (d *daemon) remove() error {
	err := d.stop()
	err = errors.Join(err, cleanDir(d.dir))
	d.lock.Close()
	return err
}

// cleanDir removes what a containerd run in dir left behind, whether it
// stopped cleanly (then there is little) or was killed with its test binary.
func cleanDir(dir string) error {
	killMentioning(dir) // containerd and its shims: their command lines name the socket
	j := readJournal(filepath.Join(dir, "created"))
	var errs []error
	for _, p := range j.pods {
		errs = append(errs, removePodCgroups(p.uid, p.qos))
	}
	for _, id := range j.ids {
		_ = os.Remove(shimSocket(filepath.Join(dir, "containerd.sock"), id))
	}
	removeParents(j.parents)
	unmountUnder(dir)
	errs = append(errs, os.RemoveAll(dir))
	return errors.Join(errs...)
}

// sweep cleans the directories of test binaries that died without cleaning
// up: the ones whose lock is free. Those of live ones, maybe another
// package's tests running beside us, stay.
func sweep() {
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), dirPrefix+"*"))
	for _, dir := range dirs {
		lock, err := os.Open(filepath.Join(dir, "owner.lock"))
		if err != nil {
			continue // not ours, or being created
		}
		if syscall.Flock(int(lock.Fd()), syscall.LOCK_EX|syscall.LOCK_NB) == nil {
			_ = cleanDir(dir)
		}
		lock.Close()
	}
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

// tail is the end of a command's output or a log, enough to say why
// something failed.
func tail(out []byte) string {
	s := strings.TrimSpace(string(out))
	if len(s) > 4000 {
		s = "..." + s[len(s)-4000:]
	}
	return s
}
