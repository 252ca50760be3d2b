package oomtest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"runtime/debug"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// Environment of a hog process (the test binary re-executed).
const (
	envHog       = "OOMTRACE_HOG"         // set: run as a hog
	envProcs     = "OOMTRACE_HOG_PROCS"   // cgroup.procs to join first ("" stays put)
	envMB        = "OOMTRACE_HOG_MB"      // MiB to allocate and touch
	envThreads   = "OOMTRACE_HOG_THREADS" // threads allocating at once
	envComm      = "OOMTRACE_HOG_COMM"    // comm to give every thread
	envAdj       = "OOMTRACE_HOG_ADJ"     // oom_score_adj
	envHold      = "OOMTRACE_HOG_HOLD"    // after allocating, wait on stdin instead of exiting
	envCoreDump  = "OOMTRACE_HOG_CORE"    // after allocating, crash with a core dump
	envZombie    = "OOMTRACE_HOG_ZOMBIE"  // the main thread exits first: a zombie group leader
	exitSurvived = 3                      // the hog allocated everything and was not killed
)

// Hog describes a process that allocates memory until the OOM killer stops it.
type Hog struct {
	Cgroup  *Cgroup // nil: stay in the current cgroup (global OOMs, VM only)
	MB      int
	Threads int
	Comm    string // up to 15 bytes, any bytes but NUL
	Adj     int    // oom_score_adj
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

// Start runs the hog. With Hold it returns once the memory is allocated.
func (h Hog) Start(ctx context.Context) (*Proc, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, exe)
	cmd.Env = append(os.Environ(),
		envHog+"=1",
		envMB+"="+strconv.Itoa(h.MB),
		envThreads+"="+strconv.Itoa(max(h.Threads, 1)),
		envComm+"="+h.Comm,
		envAdj+"="+strconv.Itoa(h.Adj),
	)
	if h.CoreDump {
		cmd.Env = append(cmd.Env, envCoreDump+"=1")
	}
	if h.ZombieLeader {
		cmd.Env = append(cmd.Env, envZombie+"=1")
	}
	if h.Cgroup != nil {
		cmd.Env = append(cmd.Env, envProcs+"="+h.Cgroup.ProcsFile())
	}
	cmd.Stderr = os.Stderr
	cmd.Dir = h.Dir
	p := &Proc{Cmd: cmd, done: make(chan struct{})}
	var ready chan struct{}
	if h.Hold {
		cmd.Env = append(cmd.Env, envHold+"=1")
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

// MaybeRunHog turns the process into a hog when the environment says so, and
// never returns then. Call it first thing in TestMain.
func MaybeRunHog() {
	if os.Getenv(envHog) == "" {
		return
	}
	if err := runHog(); err != nil {
		fmt.Fprintf(os.Stderr, "hog: %v\n", err)
		os.Exit(2)
	}
	os.Exit(exitSurvived)
}

func init() {
	// A zombie-leader hog must run its main goroutine on the main thread,
	// the group leader, to make that thread exit: init runs there.
	if os.Getenv(envHog) != "" && os.Getenv(envZombie) != "" {
		runtime.LockOSThread()
	}
}

func runHog() error {
	if os.Getenv(envZombie) != "" {
		// Everything else on other threads; then the leader exits alone.
		// syscall.Syscall, not RawSyscall: the scheduler then sees this
		// thread in a syscall and hands its P to the others.
		go func() {
			err := allocate()
			if err != nil {
				fmt.Fprintf(os.Stderr, "hog: %v\n", err)
				os.Exit(2)
			}
			os.Exit(exitSurvived)
		}()
		syscall.Syscall(syscall.SYS_EXIT, 0, 0, 0)
	}
	return allocate()
}

func allocate() error {
	// Always written, 0 included: a hog must not inherit the parent's value
	// (a test protecting itself with -1000 would make its hogs unkillable).
	if adj := os.Getenv(envAdj); adj != "" {
		if err := os.WriteFile("/proc/self/oom_score_adj", []byte(adj), 0); err != nil {
			return err
		}
	}
	if procs := os.Getenv(envProcs); procs != "" {
		// Moves every thread of this process into the scratch cgroup.
		if err := os.WriteFile(procs, []byte(strconv.Itoa(os.Getpid())), 0); err != nil {
			return err
		}
	}
	mb, _ := strconv.Atoi(os.Getenv(envMB))
	threads, _ := strconv.Atoi(os.Getenv(envThreads))
	threads = max(threads, 1)
	runtime.GOMAXPROCS(max(threads, runtime.GOMAXPROCS(0)))

	var wg sync.WaitGroup
	var keep [][]byte
	var mu sync.Mutex
	start := make(chan struct{})
	for i := 0; i < threads; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Each goroutine on its own thread, so that several threads
			// fault into the OOM path at once.
			runtime.LockOSThread()
			<-start
			chunk := mb / threads << 20
			for done := 0; done < chunk; done += 4 << 20 {
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
	// Threads exist now; name them all (a comm is per thread).
	time.Sleep(10 * time.Millisecond)
	if comm := os.Getenv(envComm); comm != "" {
		setComm(comm)
	}
	close(start)
	wg.Wait()
	runtime.KeepAlive(keep)
	if os.Getenv(envCoreDump) != "" {
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
	if os.Getenv(envHold) != "" {
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
