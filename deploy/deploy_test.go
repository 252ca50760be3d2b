package deploy

// The systemd unit against the real binary. The unit is the single source
// of truth for the capability set: these tests read it from
// systemd/oomtrace.service and run the binary with exactly that set, as
// systemd would run it (uid 0, bounding = permitted = effective = ambient =
// the set, no_new_privs), with util-linux's setpriv because systemd is not
// PID 1 on the CI machine.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/oomtrace/oomtrace/kernel/kmsg"
	"github.com/oomtrace/oomtrace/kernel/procfs"
	"github.com/oomtrace/oomtrace/ledger"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/oomtrace/oomtrace/internal/dockertest"
	"github.com/oomtrace/oomtrace/internal/oomtest"
	"golang.org/x/sys/unix"
)

func TestMain(m *testing.M) {
	oomtest.MaybeRunHog()
	dockertest.Main(m) // runs the tests, then stops a Docker engine they started
}

const unitFile = "systemd/oomtrace.service"

// refusal is the start of what the binary says when it may not load BPF.
const refusal = "needs root, or CAP_BPF + CAP_PERFMON"

// capBits are the capability names systemd and Kubernetes accept (without
// the CAP_ prefix in Kubernetes) and their bits. A name outside this table
// in the unit fails the tests: systemd-analyze verify accepts a misspelt
// capability without a word.
var capBits = map[string]uint{
	"CAP_CHOWN": unix.CAP_CHOWN, "CAP_DAC_OVERRIDE": unix.CAP_DAC_OVERRIDE,
	"CAP_DAC_READ_SEARCH": unix.CAP_DAC_READ_SEARCH, "CAP_FOWNER": unix.CAP_FOWNER,
	"CAP_FSETID": unix.CAP_FSETID, "CAP_KILL": unix.CAP_KILL, "CAP_SETGID": unix.CAP_SETGID,
	"CAP_SETUID": unix.CAP_SETUID, "CAP_SETPCAP": unix.CAP_SETPCAP,
	"CAP_LINUX_IMMUTABLE": unix.CAP_LINUX_IMMUTABLE, "CAP_NET_BIND_SERVICE": unix.CAP_NET_BIND_SERVICE,
	"CAP_NET_BROADCAST": unix.CAP_NET_BROADCAST, "CAP_NET_ADMIN": unix.CAP_NET_ADMIN,
	"CAP_NET_RAW": unix.CAP_NET_RAW, "CAP_IPC_LOCK": unix.CAP_IPC_LOCK, "CAP_IPC_OWNER": unix.CAP_IPC_OWNER,
	"CAP_SYS_MODULE": unix.CAP_SYS_MODULE, "CAP_SYS_RAWIO": unix.CAP_SYS_RAWIO,
	"CAP_SYS_CHROOT": unix.CAP_SYS_CHROOT, "CAP_SYS_PTRACE": unix.CAP_SYS_PTRACE,
	"CAP_SYS_PACCT": unix.CAP_SYS_PACCT, "CAP_SYS_ADMIN": unix.CAP_SYS_ADMIN,
	"CAP_SYS_BOOT": unix.CAP_SYS_BOOT, "CAP_SYS_NICE": unix.CAP_SYS_NICE,
	"CAP_SYS_RESOURCE": unix.CAP_SYS_RESOURCE, "CAP_SYS_TIME": unix.CAP_SYS_TIME,
	"CAP_SYS_TTY_CONFIG": unix.CAP_SYS_TTY_CONFIG, "CAP_MKNOD": unix.CAP_MKNOD, "CAP_LEASE": unix.CAP_LEASE,
	"CAP_AUDIT_WRITE": unix.CAP_AUDIT_WRITE, "CAP_AUDIT_CONTROL": unix.CAP_AUDIT_CONTROL,
	"CAP_SETFCAP": unix.CAP_SETFCAP, "CAP_MAC_OVERRIDE": unix.CAP_MAC_OVERRIDE,
	"CAP_MAC_ADMIN": unix.CAP_MAC_ADMIN, "CAP_SYSLOG": unix.CAP_SYSLOG,
	"CAP_WAKE_ALARM": unix.CAP_WAKE_ALARM, "CAP_BLOCK_SUSPEND": unix.CAP_BLOCK_SUSPEND,
	"CAP_AUDIT_READ": unix.CAP_AUDIT_READ, "CAP_PERFMON": unix.CAP_PERFMON, "CAP_BPF": unix.CAP_BPF,
	"CAP_CHECKPOINT_RESTORE": unix.CAP_CHECKPOINT_RESTORE,
}

// unit is a parsed unit file: "Section.Key" -> its values, in order.
type unit map[string][]string

func readUnit(t *testing.T) unit {
	t.Helper()
	data, err := os.ReadFile(unitFile)
	if err != nil {
		t.Fatal(err)
	}
	u := unit{}
	section := ""
	for n, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		switch {
		case line == "" || line[0] == '#' || line[0] == ';':
		case strings.HasSuffix(line, `\`):
			t.Fatalf("%s:%d: continuation lines are not supported by this parser", unitFile, n+1)
		case line[0] == '[' && line[len(line)-1] == ']':
			section = line[1 : len(line)-1]
		default:
			k, v, ok := strings.Cut(line, "=")
			if !ok {
				t.Fatalf("%s:%d: not a key=value line: %q", unitFile, n+1, line)
			}
			key := section + "." + strings.TrimSpace(k)
			u[key] = append(u[key], strings.TrimSpace(v))
		}
	}
	return u
}

// one returns the single value of key, failing when it is absent or repeated.
func (u unit) one(t *testing.T, key string) string {
	t.Helper()
	if len(u[key]) != 1 {
		t.Fatalf("%s: want exactly one %s=, have %q", unitFile, key, u[key])
	}
	return u[key][0]
}

// unitCaps is the unit's capability set: CapabilityBoundingSet= and
// AmbientCapabilities=, which must name the same known capabilities.
func unitCaps(t *testing.T) []string {
	t.Helper()
	u := readUnit(t)
	bounding := strings.Fields(u.one(t, "Service.CapabilityBoundingSet"))
	ambient := strings.Fields(u.one(t, "Service.AmbientCapabilities"))
	slices.Sort(bounding)
	slices.Sort(ambient)
	if !slices.Equal(bounding, ambient) {
		t.Fatalf("%s: CapabilityBoundingSet=%v but AmbientCapabilities=%v: they must be the same set", unitFile, bounding, ambient)
	}
	if len(bounding) == 0 || strings.HasPrefix(bounding[0], "~") {
		t.Fatalf("%s: CapabilityBoundingSet=%v: want a list of capabilities to keep", unitFile, bounding)
	}
	for _, c := range bounding {
		if _, ok := capBits[c]; !ok {
			t.Fatalf("%s: unknown capability %q", unitFile, c)
		}
	}
	return slices.Compact(bounding)
}

// testAddr replaces the unit's fixed metrics port: another tracer (a test
// of another package, a real service) may hold it. The last flag wins.
var testAddr = []string{"--metrics-addr", "127.0.0.1:0"}

// execStart is the unit's ExecStart= split into the program and its arguments.
func execStart(t *testing.T) (string, []string) {
	t.Helper()
	v := readUnit(t).one(t, "Service.ExecStart")
	if strings.ContainsAny(v, `"'$%\`) || strings.ContainsAny(v[:1], "-@:+!") {
		t.Fatalf("ExecStart=%s: quoting, variables, specifiers and prefixes are not supported by this parser", v)
	}
	f := strings.Fields(v)
	return f[0], f[1:]
}

func capMask(caps []string) uint64 {
	var m uint64
	for _, c := range caps {
		m |= 1 << capBits[c]
	}
	return m
}

// setprivCaps is caps as setpriv wants them: -all,+bpf,+perfmon...
func setprivCaps(caps []string) string {
	s := "-all"
	for _, c := range caps {
		s += ",+" + strings.ToLower(strings.TrimPrefix(c, "CAP_"))
	}
	return s
}

// procCaps reads the Cap* lines of /proc/PID/status.
func procCaps(pid int) (map[string]uint64, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return nil, err
	}
	out := map[string]uint64{}
	for _, line := range strings.Split(string(data), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if ok && strings.HasPrefix(k, "Cap") {
			n, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
			if err != nil {
				return nil, fmt.Errorf("/proc/%d/status %s: %w", pid, k, err)
			}
			out[k] = n
		}
	}
	return out, nil
}

// requireCaps skips when this process cannot hand out caps: not root, no
// setpriv, or a bounding set without them (a container that lacks CAP_BPF).
func requireCaps(t *testing.T, caps []string) {
	t.Helper()
	oomtest.RequireRoot(t)
	if _, err := exec.LookPath("setpriv"); err != nil {
		t.Skip("needs setpriv (util-linux) to run the binary with a chosen capability set")
	}
	own, err := procCaps(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range append([]string{"CAP_SETPCAP"}, caps...) {
		if own["CapBnd"]&(1<<capBits[c]) == 0 {
			t.Skipf("this process's bounding set lacks %s: it cannot give the binary the unit's set", c)
		}
	}
}

// buildBinary builds cmd/oomtrace as `make build` does. The directory is
// world-searchable so that a binary run with no DAC capability can reach it.
func buildBinary(t *testing.T) string {
	t.Helper()
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("needs the go toolchain to build the binary")
	}
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "oomtrace")
	cmd := exec.Command("go", "build", "-o", bin, "github.com/oomtrace/oomtrace/cmd/oomtrace")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// lockedBuffer is a bytes.Buffer safe to read while a process writes it.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// tracer is the binary running under setpriv.
type tracer struct {
	cmd    *exec.Cmd
	ready  string
	stderr *lockedBuffer
	mu     sync.Mutex
	lines  []string
	done   chan struct{} // closed when the process has exited
	err    error         // its exit, once done is closed
}

// runOpts says how to start the binary.
type runOpts struct {
	caps []string // the capability set, nothing else
	args []string // after --ready-file
	env  []string // added to the test's environment
	wrap []string // a command the setpriv command line is given to, e.g. strace
}

func startTracer(t *testing.T, bin string, o runOpts) *tracer {
	t.Helper()
	tr := &tracer{ready: filepath.Join(t.TempDir(), "ready"), stderr: &lockedBuffer{}, done: make(chan struct{})}
	c := setprivCaps(o.caps)
	argv := slices.Concat(o.wrap,
		[]string{"setpriv", "--no-new-privs", "--inh-caps", c, "--ambient-caps", c, "--bounding-set", c, "--", bin, "--ready-file", tr.ready},
		// The ledger in a directory of the test's, not the host's
		// /var/lib/oomtrace: still read and written, under the unit's filter.
		[]string{"--state-dir", seededStateDir(t)},
		o.args)
	tr.cmd = exec.Command(argv[0], argv[1:]...)
	tr.cmd.Env = append(os.Environ(), o.env...)
	tr.cmd.Stderr = tr.stderr
	out, err := tr.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := tr.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(out)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			tr.mu.Lock()
			tr.lines = append(tr.lines, sc.Text())
			tr.mu.Unlock()
		}
		tr.err = tr.cmd.Wait()
		close(tr.done)
	}()
	t.Cleanup(func() {
		// A wrapper killed with SIGKILL (strace) leaves the binary running:
		// kill it by the pid it wrote, too.
		if data, err := os.ReadFile(tr.ready); err == nil {
			if pid, err := strconv.Atoi(strings.TrimSpace(string(data))); err == nil {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
		}
		_ = tr.cmd.Process.Kill()
		<-tr.done
	})
	return tr
}

// waitReady waits for the ready file; false when the process exited first.
func (tr *tracer) waitReady(t *testing.T) bool {
	t.Helper()
	deadline := time.After(30 * time.Second)
	for {
		if _, err := os.Stat(tr.ready); err == nil {
			return true
		}
		select {
		case <-tr.done:
			return false
		case <-deadline:
			t.Fatalf("no ready file after 30s; stderr: %s", tr.stderr.String())
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// pid of the binary, from its ready file (it is setpriv's pid, which execs
// it, but not a wrapper's).
func (tr *tracer) pid(t *testing.T) int {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		// The file exists a moment before its content does.
		data, err := os.ReadFile(tr.ready)
		if err != nil {
			t.Fatal(err)
		}
		if pid, err := strconv.Atoi(strings.TrimSpace(string(data))); err == nil {
			return pid
		}
		if time.Now().After(deadline) {
			t.Fatalf("ready file holds %q, not a pid", data)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// healthz asks the metrics server the startup line names for /healthz.
func (tr *tracer) healthz(t *testing.T) {
	t.Helper()
	if code, body := oomtest.DaemonGet(t, tr.snapshot(), "/healthz"); code != http.StatusOK {
		t.Errorf("/healthz: %d %s", code, body)
	}
}

// stop sends SIGTERM to the binary and checks it exits 0.
func (tr *tracer) stop(t *testing.T, pid int) {
	t.Helper()
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	tr.waitStopped(t)
}

// waitStopped waits for the tracer to exit cleanly after its SIGTERM.
func (tr *tracer) waitStopped(t *testing.T) {
	t.Helper()
	select {
	case <-tr.done:
		if tr.err != nil {
			t.Errorf("exit after SIGTERM: %v; stderr: %s", tr.err, tr.stderr.String())
		}
	case <-time.After(15 * time.Second):
		t.Fatal("no exit within 15s of SIGTERM")
	}
}

// event is the part of an output line these tests read.
type event struct {
	Message string
	Victim  struct {
		Pid    int
		Comm   string
		Cgroup struct{ Path *string }
	}
	Container struct{ Name *string }
}

func parseEvents(t *testing.T, lines []string) []event {
	t.Helper()
	var evs []event
	for _, l := range lines {
		var e event
		if err := json.Unmarshal([]byte(l), &e); err != nil {
			t.Fatalf("not a JSON line: %q: %v", l, err)
		}
		evs = append(evs, e)
	}
	return evs
}

// killsIn returns the oom_kill events whose victim's cgroup path is path.
// Other kills on the machine (other tests) are not the test's.
func killsIn(evs []event, path string) []event {
	var out []event
	for _, e := range evs {
		if e.Message == "oom_kill" && e.Victim.Cgroup.Path != nil && *e.Victim.Cgroup.Path == path {
			out = append(out, e)
		}
	}
	return out
}

// waitKills polls lines() until n kills in path are out (or 20 s), then
// waits a little more so that a duplicate would show, and returns them.
func waitKills(t *testing.T, lines func() []string, path string, n int) []event {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for len(killsIn(parseEvents(t, lines()), path)) < n && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(300 * time.Millisecond)
	return killsIn(parseEvents(t, lines()), path)
}

func (tr *tracer) snapshot() []string {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	return slices.Clone(tr.lines)
}

// oomKill provokes one OOM kill in a fresh 64 MiB scratch cgroup and
// returns the hog's pid, the cgroup's path relative to the hierarchy root
// (as events give it) and the kernel's count of kills there.
func oomKill(t *testing.T, comm string) (pid int, path string, kernelKills int) {
	t.Helper()
	h := oomtest.MustHierarchy(t)
	cg := oomtest.NewCgroup(t, h, nil, "deploy", 64<<20)
	before, err := cg.OOMKills()
	if err != nil {
		t.Fatal(err)
	}
	p, err := oomtest.Hog{Cgroup: cg, MB: 256, Comm: comm}.Start(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if killed, err := p.Wait(); err != nil || !killed {
		t.Fatalf("hog: killed=%v err=%v", killed, err)
	}
	after, err := cg.OOMKills()
	if err != nil {
		t.Fatal(err)
	}
	return p.Pid(), strings.TrimPrefix(cg.Path, h.Root), int(after - before)
}

// checkKill checks the events of one provoked kill against the kernel's
// count (memory.events or memory.oom_control oom_kill of the cgroup).
func checkKill(t *testing.T, evs []event, pid int, comm string, kernelKills int) {
	t.Helper()
	if kernelKills != 1 || len(evs) != kernelKills {
		t.Fatalf("%d oom_kill events in the scratch cgroup; the kernel counted %d kills there (want 1)", len(evs), kernelKills)
	}
	if v := evs[0].Victim; v.Pid != pid || v.Comm != comm {
		t.Errorf("victim pid %d comm %q, want %d %q", v.Pid, v.Comm, pid, comm)
	}
}

// TestUnitCapabilitiesSuffice runs the binary as the unit runs it, with the
// unit's capabilities and no others, and checks it reports a kill with the
// victim's cgroup resolved.
func TestUnitCapabilitiesSuffice(t *testing.T) {
	caps := unitCaps(t)
	requireCaps(t, caps)
	bin := buildBinary(t)
	_, args := execStart(t)
	tr := startTracer(t, bin, runOpts{caps: caps, args: append(args, testAddr...)})
	if !tr.waitReady(t) {
		t.Fatalf("exited before ready: %v; stderr: %s", tr.err, tr.stderr.String())
	}
	pid := tr.pid(t)
	tr.healthz(t)
	got, err := procCaps(pid)
	if err != nil {
		t.Fatal(err)
	}
	want := capMask(caps)
	for _, set := range []string{"CapEff", "CapPrm", "CapBnd", "CapAmb"} {
		if got[set] != want {
			t.Errorf("%s %016x, want %016x (%v)", set, got[set], want, caps)
		}
	}
	t.Logf("running with %v: CapEff %016x", caps, got["CapEff"])

	hog, path, kernelKills := oomKill(t, "deploy-hog")
	evs := waitKills(t, tr.snapshot, path, kernelKills)
	checkKill(t, evs, hog, "deploy-hog", kernelKills)
	tr.stop(t, pid)
}

// TestUnitCapabilitiesEachNeeded drops each capability of the unit's set in
// turn. Without CAP_BPF or CAP_PERFMON the binary must refuse with its clear
// message and exit 1; a capability the tracer can start without must say
// here what it is for, or leave the set.
func TestUnitCapabilitiesEachNeeded(t *testing.T) {
	caps := unitCaps(t)
	requireCaps(t, caps)
	bin := buildBinary(t)
	_, args := execStart(t)
	// Capabilities the tracer starts without, and what it loses then
	// (measured: docs/deploy.md).
	enrichOnly := map[string]string{
		"CAP_DAC_READ_SEARCH": "open_by_handle_at(2) for cgroup paths; without it, rate-limited walks lose the path of kills in new cgroups in bursts",
		"CAP_SYSLOG":          "/dev/kmsg: the kills made while the tracer was down, backfilled from the kernel log; without it they are counted (oom_missed), not named. And /proc/kallsyms' addresses, which name trigger.kernel_stack; without them it is null",
	}
	for _, drop := range caps {
		t.Run(drop, func(t *testing.T) {
			rest := slices.DeleteFunc(slices.Clone(caps), func(c string) bool { return c == drop })
			tr := startTracer(t, bin, runOpts{caps: rest, args: append(slices.Clone(args), testAddr...)})
			ready := tr.waitReady(t)
			if why, ok := enrichOnly[drop]; ok {
				if !ready {
					t.Fatalf("without %s: exited (%v) instead of starting; stderr: %s", drop, tr.err, tr.stderr.String())
				}
				t.Logf("starts without %s, which is for %s", drop, why)
				tr.stop(t, tr.pid(t))
				return
			}
			if ready {
				t.Fatalf("started without %s: the unit's set has a capability the tracer does not need (or add it to enrichOnly, saying why)", drop)
			}
			var ee *exec.ExitError
			if !errors.As(tr.err, &ee) || ee.ExitCode() != 1 {
				t.Errorf("without %s: exit %v, want exit status 1", drop, tr.err)
			}
			if !strings.Contains(tr.stderr.String(), refusal) {
				t.Errorf("without %s: stderr %q does not say %q", drop, tr.stderr.String(), refusal)
			}
		})
	}
}

// TestUnitFile checks the unit with systemd's own tools: `systemd-analyze
// verify` (against a scratch root holding the unit, a stand-in binary and
// this machine's system units) and the exposure score of `systemd-analyze
// security --offline`. Neither needs systemd to be running.
func TestUnitFile(t *testing.T) {
	if _, err := exec.LookPath("systemd-analyze"); err != nil {
		t.Skip("needs systemd-analyze (Debian package systemd)")
	}
	u := readUnit(t)
	for key, want := range map[string]string{
		"Service.User": "root", "Service.NoNewPrivileges": "yes", "Service.LimitMEMLOCK": "infinity",
		"Service.ProtectSystem": "strict", "Service.StandardOutput": "journal", "Service.Restart": "on-failure",
	} {
		if got := u.one(t, key); got != want {
			t.Errorf("%s=%s, want %s", key, got, want)
		}
	}
	unitCaps(t)

	root := t.TempDir()
	prog, _ := execStart(t)
	for _, dir := range []string{filepath.Dir(prog), "/etc/systemd/system", "/usr/lib/systemd"} {
		if err := os.MkdirAll(filepath.Join(root, dir), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(root, prog), []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(unitFile)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "etc/systemd/system/oomtrace.service"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	// The targets the unit and its defaults refer to (multi-user.target,
	// sysinit.target...).
	if out, err := exec.Command("cp", "-a", "/lib/systemd/system", filepath.Join(root, "usr/lib/systemd/")).CombinedOutput(); err != nil {
		t.Fatalf("copying the system units: %v: %s", err, out)
	}
	// verify exits 0 on unknown keys and unparsable values, only warning:
	// any output is a failure.
	out, err := exec.Command("systemd-analyze", "verify", "--root="+root, "oomtrace.service").CombinedOutput()
	if err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
	// 0-100; the unit scores 25 with systemd 252 ("2.5 OK"): a guard
	// against a hardening setting lost in an edit.
	out, err = exec.Command("systemd-analyze", "security", "--offline=yes", "--threshold=30", unitFile).CombinedOutput()
	if err != nil {
		t.Errorf("systemd-analyze security: exposure above 3.0 or error: %v\n%s", err, out)
	}
}

// TestUnitSystemCallFilter runs the binary under strace with the unit's
// capabilities, through startup, one OOM kill and the Docker client's
// connection attempts, and checks that every system call it made is in the
// unit's SystemCallFilter=, expanded by this machine's systemd. A call
// outside it would kill the service with SIGSYS.
func TestUnitSystemCallFilter(t *testing.T) {
	for _, tool := range []string{"strace", "systemd-analyze"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("needs %s (scripts/install-deps.sh installs it)", tool)
		}
	}
	allowed := unitSyscalls(t)
	caps := unitCaps(t)
	requireCaps(t, caps)
	bin := buildBinary(t)
	log := filepath.Join(t.TempDir(), "strace.log")
	// --docker on with an absent socket: the client's connect attempts
	// run too, as on a host whose Docker is down.
	tr := startTracer(t, bin, runOpts{
		caps: caps, args: append([]string{"--docker", "on"}, testAddr...),
		env:  []string{"DOCKER_HOST=unix:///nonexistent/docker.sock"},
		wrap: []string{"strace", "-f", "-qq", "-o", log},
	})
	if !tr.waitReady(t) {
		t.Fatalf("exited before ready: %v; stderr: %s", tr.err, tr.stderr.String())
	}
	tr.healthz(t) // the metrics server's accept and write paths
	hog, path, kernelKills := oomKill(t, "seccomp-hog")
	checkKill(t, waitKills(t, tr.snapshot, path, kernelKills), hog, "seccomp-hog", kernelKills)
	tr.stop(t, tr.pid(t))

	used, err := tracerSyscalls(log, bin)
	if err != nil {
		t.Fatal(err)
	}
	if len(used) < 20 {
		t.Fatalf("only %d system calls seen in the strace log: %v", len(used), used)
	}
	var outside []string
	for _, s := range used {
		if !allowed[s] {
			outside = append(outside, s)
		}
	}
	if len(outside) > 0 {
		t.Errorf("system calls the unit's SystemCallFilter= does not allow: %v (of %d: %v)", outside, len(used), used)
	} else {
		t.Logf("%d distinct system calls, all allowed: %v", len(used), used)
	}
}

// unitSyscalls expands the unit's SystemCallFilter= (an allow list of
// @groups and names) with systemd-analyze.
func unitSyscalls(t *testing.T) map[string]bool {
	t.Helper()
	out, err := exec.Command("systemd-analyze", "syscall-filter").Output()
	if err != nil {
		t.Fatalf("systemd-analyze syscall-filter: %v", err)
	}
	groups := map[string][]string{}
	var cur string
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.TrimSpace(line)
		switch {
		case f == "":
			cur = ""
		case strings.HasPrefix(line, "@"):
			cur = f
		case cur != "" && !strings.HasPrefix(f, "#"):
			groups[cur] = append(groups[cur], f)
		}
	}
	allowed := map[string]bool{}
	var add func(string)
	add = func(name string) {
		if !strings.HasPrefix(name, "@") {
			allowed[name] = true
			return
		}
		members, ok := groups[name]
		if !ok {
			t.Fatalf("SystemCallFilter=: systemd knows no group %s", name)
		}
		for _, m := range members {
			add(m)
		}
	}
	for _, v := range readUnit(t)["Service.SystemCallFilter"] {
		if strings.HasPrefix(v, "~") {
			t.Fatalf("SystemCallFilter=%s: this test understands allow lists only", v)
		}
		for _, name := range strings.Fields(v) {
			add(name)
		}
	}
	if len(allowed) == 0 {
		t.Fatal("the unit has no SystemCallFilter=")
	}
	return allowed
}

// tracerSyscalls lists the distinct system calls in an `strace -f` log made
// by the binary: those after setpriv's execve of it, in any thread.
func tracerSyscalls(log, bin string) ([]string, error) {
	data, err := os.ReadFile(log)
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	started := false
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		name, _, ok := strings.Cut(f[1], "(")
		if !ok || name == "" || strings.HasPrefix(f[1], "<") {
			continue // "<... resumed>", "+++ exited", "--- SIG..."
		}
		if name == "???" {
			// strace could not read the call's registers: the thread was
			// already being torn down (exit_group in another thread) and
			// the line ends "= ? <unavailable>". Nothing names a call.
			continue
		}
		if !started {
			started = name == "execve" && strings.HasPrefix(f[1], `execve("`+bin+`"`) && strings.HasSuffix(line, "= 0")
			continue
		}
		seen[name] = true
	}
	if !started {
		return nil, fmt.Errorf("no execve of %s in %s", bin, log)
	}
	names := make([]string, 0, len(seen))
	for n := range seen {
		names = append(names, n)
	}
	slices.Sort(names)
	return names, nil
}

// seededStateDir is a state directory as a run of this boot would leave
// it, up to now: the tracer then backfills no kill of the kernel log that
// other tests made (a first start backfills the whole log, and scratch
// cgroup paths recur between test binaries), yet reads and writes the
// ledger as it does on a node.
func seededStateDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	boot, err := procfs.BootID()
	if err != nil {
		t.Fatal(err)
	}
	last, err := kmsg.Read(0, true, func(kmsg.Record) {})
	if err != nil {
		t.Fatalf("reading the kernel log: %v", err)
	}
	vm, err := procfs.VMStatOOMKill()
	if err != nil {
		t.Fatal(err)
	}
	st := ledger.State{Version: ledger.Version, BootID: boot, SavedAt: time.Now(), VMStatOOMKill: vm,
		Cgroups: []ledger.Cgroup{}, KmsgSeq: &last, MonotonicNs: uint64(kmsg.Monotonic())}
	if err := ledger.Save(dir, st); err != nil {
		t.Fatal(err)
	}
	return dir
}
