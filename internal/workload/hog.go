// Package workload runs the processes that provoke real OOM kills, for
// oomtrace verify and for the tests: memory hogs, started as this same
// binary's explicit `workload` subcommand (flags, never the environment), in
// scratch memory cgroups with small limits that it creates and removes, and
// the kernel's own counters to check them against.
package workload

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// Command is the subcommand a binary runs its hogs as: `BINARY workload
// FLAGS` (see Main). oomtrace and the test binaries dispatch it first thing.
const Command = "workload"

// exitSurvived: the hog allocated everything and was not killed.
const exitSurvived = 3

// zombieFlag is read before main runs (see init).
const zombieFlag = "-zombie-leader"

// Hog describes a process that allocates memory until the OOM killer stops it.
type Hog struct {
	Cgroup  *Cgroup // nil: stay in the current cgroup (global OOMs, VM only)
	MB      int
	Threads int
	Comm    string // up to 15 bytes, any bytes but NUL
	Adj     int    // oom_score_adj
	// MBPerSecond paces the allocation (0: as fast as it goes): a cgroup
	// that climbs to its limit over seconds, as a leak does.
	MBPerSecond int
	// Hold keeps the hog alive after it allocated MB (a candidate that is
	// not meant to hit the limit itself); Start returns once it is ready.
	Hold bool
	// CoreDump makes the hog, once it allocated MB, abort with a core dump
	// (RLIMIT_CORE raised; where the core goes is kernel.core_pattern's).
	CoreDump bool
	// Dir is the hog's working directory ("" stays put): where a relative
	// kernel.core_pattern writes its core.
	Dir string
	// ZombieLeader makes the main thread exit (exit(2), not exit_group)
	// before the others allocate: the group leader is a zombie without an
	// mm while its threads live on.
	ZombieLeader bool
}

// Proc is a started hog.
type Proc struct {
	Cmd   *exec.Cmd
	stdin interface{ Close() error }
	done  chan struct{}
	err   error
}

// Args are the flags of Main that make this hog.
func (h Hog) Args() []string {
	args := []string{
		"-mb", strconv.Itoa(h.MB), "-threads", strconv.Itoa(max(h.Threads, 1)),
		"-comm", h.Comm, "-adj", strconv.Itoa(h.Adj),
	}
	if h.Cgroup != nil {
		args = append(args, "-procs", h.Cgroup.ProcsFile())
	}
	if h.Hold {
		args = append(args, "-hold")
	}
	if h.MBPerSecond > 0 {
		args = append(args, "-mb-per-second", strconv.Itoa(h.MBPerSecond))
	}
	if h.CoreDump {
		args = append(args, "-core-dump")
	}
	if h.ZombieLeader {
		args = append(args, zombieFlag)
	}
	return args
}

// Start runs the hog as this binary's workload subcommand. With Hold it
// returns once the memory is allocated.
func (h Hog) Start(ctx context.Context) (*Proc, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, exe, append([]string{Command}, h.Args()...)...)
	cmd.Stderr = os.Stderr
	cmd.Dir = h.Dir
	p := &Proc{Cmd: cmd, done: make(chan struct{})}
	var ready chan struct{}
	if h.Hold {
		in, err := cmd.StdinPipe()
		if err != nil {
			return nil, err
		}
		out, err := cmd.StdoutPipe()
		if err != nil {
			return nil, err
		}
		p.stdin = in
		ready = make(chan struct{})
		go func() {
			buf := make([]byte, 1)
			_, _ = out.Read(buf) // one byte once allocated, EOF if it died
			close(ready)
		}()
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	go func() { p.err = cmd.Wait(); close(p.done) }()
	if ready != nil {
		select {
		case <-ready:
		case <-time.After(60 * time.Second):
			_ = cmd.Process.Kill()
			return nil, errors.New("hog did not get ready in 60s")
		}
	}
	return p, nil
}

// Done is closed once the hog has ended.
func (p *Proc) Done() <-chan struct{} { return p.done }

// Pid of the hog.
func (p *Proc) Pid() int { return p.Cmd.Process.Pid }

// Wait returns how the hog ended: nil error and killed=true when SIGKILL ended it.
func (p *Proc) Wait() (killed bool, err error) {
	<-p.done
	if p.stdin != nil {
		_ = p.stdin.Close()
	}
	var ee *exec.ExitError
	if errors.As(p.err, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() && ws.Signal() == syscall.SIGKILL {
			return true, nil
		}
		if ee.ExitCode() == exitSurvived {
			return false, nil
		}
	}
	return false, p.err
}

// Stop ends a holding hog (closing its stdin) and waits for it.
func (p *Proc) Stop() {
	if p.stdin != nil {
		_ = p.stdin.Close()
	}
	select {
	case <-p.done:
	case <-time.After(5 * time.Second):
		_ = p.Cmd.Process.Kill()
		<-p.done
	}
}

// MaybeRun runs Main and exits when this process was started as a hog
// (`BINARY workload FLAGS`); otherwise it returns at once.
func MaybeRun() {
	if len(os.Args) > 1 && os.Args[1] == Command {
		os.Exit(Main(os.Args[2:]))
	}
}

func init() {
	// A zombie-leader hog must run its main goroutine on the main thread,
	// the group leader, to make that thread exit: init runs there.
	if len(os.Args) > 1 && os.Args[1] == Command && slices.Contains(os.Args, zombieFlag) {
		runtime.LockOSThread()
	}
}

// config is what Main's flags say.
type config struct {
	procs, comm        string
	mb, threads, adj   int
	mbPerSecond        int
	hold, core, zombie bool
	// The refusing mode (see Refuse).
	refuseCalls, forkMB, forks      int
	refuseCall                      string
	refuseBytes, rlimitAS, rlimitDa uint64
	refuseHold                      time.Duration
}

// Main is the workload subcommand: join a cgroup, allocate and touch memory
// until the OOM killer ends the process. Its exit code is 3 when it
// allocated everything and was not killed, 2 on a usage or setup error.
func Main(args []string) int {
	var c config
	fs := flag.NewFlagSet("workload", flag.ContinueOnError)
	fs.StringVar(&c.procs, "procs", "", "cgroup.procs file to join first (default: stay put)")
	fs.IntVar(&c.mb, "mb", 0, "MiB to allocate and touch")
	fs.IntVar(&c.threads, "threads", 1, "threads allocating at once")
	fs.IntVar(&c.mbPerSecond, "mb-per-second", 0, "allocate at this pace, all threads together (0: as fast as it goes)")
	fs.StringVar(&c.comm, "comm", "", "comm to give every thread")
	fs.IntVar(&c.adj, "adj", 0, "oom_score_adj (always written: never the parent's)")
	fs.BoolVar(&c.hold, "hold", false, "after allocating, wait for stdin to close instead of exiting")
	fs.BoolVar(&c.core, "core-dump", false, "after allocating, abort with a core dump")
	fs.BoolVar(&c.zombie, zombieFlag[1:], false, "the main thread exits first: a zombie group leader")
	fs.IntVar(&c.refuseCalls, "refuse-calls", 0, "instead: this many -refuse-call calls asking for -refuse-bytes, counting the refused ones")
	fs.StringVar(&c.refuseCall, "refuse-call", "mmap", "mmap (anonymous), mremap (growing a page to -refuse-bytes) or brk (the break raised by -refuse-bytes)")
	fs.Uint64Var(&c.refuseBytes, "refuse-bytes", 1<<40, "bytes each -refuse-calls call asks for")
	fs.Uint64Var(&c.rlimitAS, "rlimit-as", 0, "set RLIMIT_AS first, this many bytes above the process's size (0: leave it)")
	fs.Uint64Var(&c.rlimitDa, "rlimit-data", 0, "set RLIMIT_DATA first, this many bytes above the process's data (0: leave it)")
	fs.IntVar(&c.forkMB, "fork-mb", 0, "instead: touch this many MiB, then fork -forks times, counting the refused ones")
	fs.IntVar(&c.forks, "forks", 1, "forks of -fork-mb")
	fs.DurationVar(&c.refuseHold, "refuse-hold", 0, "stay alive this long after the last refused call")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if c.refuseCalls > 0 || c.forkMB > 0 {
		if err := c.refuse(); err != nil {
			fmt.Fprintf(os.Stderr, "workload: %v\n", err)
			return 2
		}
		return 0
	}
	if err := c.run(); err != nil {
		fmt.Fprintf(os.Stderr, "workload: %v\n", err)
		return 2
	}
	return exitSurvived
}

func (c config) run() error {
	if c.zombie {
		// Everything else on other threads; then the leader exits alone.
		// syscall.Syscall, not RawSyscall: the scheduler then sees this
		// thread in a syscall and hands its P to the others.
		go func() {
			if err := c.allocate(); err != nil {
				fmt.Fprintf(os.Stderr, "workload: %v\n", err)
				os.Exit(2)
			}
			os.Exit(exitSurvived)
		}()
		syscall.Syscall(syscall.SYS_EXIT, 0, 0, 0)
	}
	return c.allocate()
}

func (c config) allocate() error {
	if c.adj == -1000 {
		// An unkillable hog: no garbage collection. It keeps all it
		// allocates, so a cycle frees nothing, and a cycle's restart of
		// the world may start a thread. In a cgroup at its limit with
		// nothing killable that clone fails with ENOMEM, and the runtime
		// dies of it ("failed to create new OS thread", exit 2) instead of
		// staying in the kernel's retries: seen once in CI, 6.12 fentry,
		// TestNoKillAggregated. Only this hog: the runtime's own memory
		// is part of what the others bring to a contest (verify's
		// scenarios size their triggers with it).
		debug.SetGCPercent(-1)
		// Nor may the scheduler need a new thread there: a locked
		// allocating thread preempted at the limit hands its P to another
		// thread, and with none idle the runtime clones one and dies of
		// the same ENOMEM (seen in CI, 6.12 tp_btf, same test). Threads
		// made now, while memory is free, wait idle in the runtime's pool.
		spareThreads(max(c.threads, 1) + runtime.GOMAXPROCS(0) + 4)
	}
	// Always written, 0 included: a hog must not inherit the parent's value
	// (a test protecting itself with -1000 would make its hogs unkillable).
	if err := os.WriteFile("/proc/self/oom_score_adj", []byte(strconv.Itoa(c.adj)), 0); err != nil {
		return err
	}
	if c.procs != "" {
		// Moves every thread of this process into the scratch cgroup.
		if err := os.WriteFile(c.procs, []byte(strconv.Itoa(os.Getpid())), 0); err != nil {
			return err
		}
	}
	threads := max(c.threads, 1)
	runtime.GOMAXPROCS(max(threads, runtime.GOMAXPROCS(0)))

	var wg, locked sync.WaitGroup
	var keep [][]byte
	var mu sync.Mutex
	start := make(chan struct{})
	for i := 0; i < threads; i++ {
		wg.Add(1)
		locked.Add(1)
		go func() {
			defer wg.Done()
			// Each goroutine on its own thread, so that several threads
			// fault into the OOM path at once.
			runtime.LockOSThread()
			locked.Done()
			<-start
			chunk := c.mb / threads << 20
			// Each thread's 4 MiB at its share of the pace.
			var pause time.Duration
			if c.mbPerSecond > 0 {
				pause = time.Duration(4*threads) * time.Second / time.Duration(c.mbPerSecond)
			}
			for done := 0; done < chunk; done += 4 << 20 {
				if pause > 0 && done > 0 {
					time.Sleep(pause)
				}
				b := make([]byte, 4<<20)
				for j := 0; j < len(b); j += 4096 {
					b[j] = 1
				}
				mu.Lock()
				keep = append(keep, b)
				mu.Unlock()
			}
		}()
	}
	// Every allocating thread exists now; name them all (a comm is per thread).
	locked.Wait()
	if c.comm != "" {
		setComm(c.comm)
	}
	close(start)
	wg.Wait()
	runtime.KeepAlive(keep)
	if c.core {
		// The core holds what was allocated, written to the core_pattern
		// while the memory is still charged: the dump itself hits the limit.
		lim := syscall.Rlimit{Cur: ^uint64(0), Max: ^uint64(0)}
		if err := syscall.Setrlimit(syscall.RLIMIT_CORE, &lim); err != nil {
			return fmt.Errorf("raising RLIMIT_CORE: %w", err)
		}
		debug.SetTraceback("crash") // the runtime re-raises SIGABRT with the default action: a core
		_ = syscall.Kill(os.Getpid(), syscall.SIGABRT)
		for { // until the signal ends the process (a bare select{} would be a "deadlock")
			time.Sleep(time.Second)
		}
	}
	if c.hold {
		os.Stdout.Write([]byte{'r'})
		buf := make([]byte, 1)
		_, _ = os.Stdin.Read(buf)
		runtime.KeepAlive(keep)
	}
	return nil
}

func setComm(comm string) {
	tasks, _ := os.ReadDir("/proc/self/task")
	for _, t := range tasks {
		_ = os.WriteFile("/proc/self/task/"+t.Name()+"/comm", []byte(comm), 0)
	}
}

// spareThreads leaves n OS threads idle in the runtime's pool: n goroutines
// each hold a thread of their own at once, then unlock it and end, and the
// runtime keeps an unlocked goroutine's thread for reuse.
func spareThreads(n int) {
	var held, done sync.WaitGroup
	release := make(chan struct{})
	for i := 0; i < n; i++ {
		held.Add(1)
		done.Add(1)
		go func() {
			defer done.Done()
			runtime.LockOSThread()
			held.Done()
			<-release
			runtime.UnlockOSThread()
		}()
	}
	held.Wait()
	close(release)
	done.Wait()
}
