package main

import (
	"fmt"
	"os"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"time"
)

// The syscall-heavy workload of the alloc_refused overhead: what its
// tracepoints fire on (mmap and munmap pairs, brk up and down, forks), and
// a syscall they do not hook (getppid), which the syscall tracepoints slow
// too: while any is enabled, every task takes the kernel's slow syscall
// path (TIF_SYSCALL_TRACEPOINT).
type allocPhase struct {
	name string
	n    int // operations per round
	run  func(n int) error
}

func allocPhases(scale int) []allocPhase {
	return []allocPhase{
		{"mmap + munmap of 4 KiB", 1000000 * scale / 10, mmapLoop},
		{"brk up 64 KiB and back", 1000000 * scale / 10, brkLoop},
		{"fork + exit + wait", 2000 * scale / 10, forkLoop},
		{"getppid (not hooked)", 2000000 * scale / 10, getppidLoop},
	}
}

func mmapLoop(n int) error {
	for i := 0; i < n; i++ {
		addr, _, e := syscall.RawSyscall6(syscall.SYS_MMAP, 0, 4096, syscall.PROT_READ|syscall.PROT_WRITE,
			syscall.MAP_PRIVATE|syscall.MAP_ANONYMOUS, ^uintptr(0), 0)
		if e != 0 {
			return fmt.Errorf("mmap: %w", e)
		}
		if _, _, e := syscall.RawSyscall(syscall.SYS_MUNMAP, addr, 4096, 0); e != 0 {
			return fmt.Errorf("munmap: %w", e)
		}
	}
	return nil
}

// brkLoop moves the break up and back: the Go runtime does not use brk on
// Linux, so nothing else lives there.
func brkLoop(n int) error {
	cur, _, _ := syscall.RawSyscall(syscall.SYS_BRK, 0, 0, 0)
	for i := 0; i < n; i++ {
		if r, _, _ := syscall.RawSyscall(syscall.SYS_BRK, cur+64<<10, 0, 0); r != cur+64<<10 {
			return fmt.Errorf("brk up refused")
		}
		syscall.RawSyscall(syscall.SYS_BRK, cur, 0, 0)
	}
	return nil
}

// forkLoop forks with a raw clone(SIGCHLD): the child exits at once,
// without running Go.
func forkLoop(n int) error {
	for i := 0; i < n; i++ {
		pid, _, e := syscall.RawSyscall6(syscall.SYS_CLONE, uintptr(syscall.SIGCHLD), 0, 0, 0, 0, 0)
		if e != 0 {
			return fmt.Errorf("fork: %w", e)
		}
		if pid == 0 {
			syscall.RawSyscall(syscall.SYS_EXIT_GROUP, 0, 0, 0)
		}
		var ws syscall.WaitStatus
		if _, err := syscall.Wait4(int(pid), &ws, 0, nil); err != nil {
			return err
		}
	}
	return nil
}

func getppidLoop(n int) error {
	for i := 0; i < n; i++ {
		syscall.RawSyscall(syscall.SYS_GETPPID, 0, 0, 0)
	}
	return nil
}

// allocConfigs are what the workload runs beside, in each round.
var allocConfigs = []struct {
	name string
	args []string // nil: no tracer
}{
	{"no tracer", nil},
	{"oomtrace (default)", []string{"--risk-threshold", "0"}},
	{"oomtrace --alloc-refused", []string{"--risk-threshold", "0", "--alloc-refused=true"}},
}

// allocOverhead runs the workload rounds times beside each configuration,
// interleaved (the machine's other load hits all alike), and reports each
// phase's median time per operation and the slowdown against no tracer.
func allocOverhead(bin string, rounds, scale int, out string) error {
	if os.Geteuid() != 0 {
		return fmt.Errorf("needs root: it loads BPF")
	}
	// Without tracefs, --alloc-refused attaches nothing and would be
	// measured as free.
	if err := ensureTracefs(); err != nil {
		return err
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	phases := allocPhases(scale)
	// per[config][phase] = ns per operation of each round
	per := make([][][]float64, len(allocConfigs))
	for c := range per {
		per[c] = make([][]float64, len(phases))
	}
	for r := 0; r < rounds; r++ {
		for c, cfg := range allocConfigs {
			var tr *tracerProc
			if cfg.args != nil {
				var err error
				if tr, err = startTracer(bin, cfg.args...); err != nil {
					return err
				}
				time.Sleep(200 * time.Millisecond)
			}
			for p, ph := range phases {
				start := time.Now()
				err := ph.run(ph.n)
				el := time.Since(start)
				if err != nil {
					if tr != nil {
						tr.stop()
					}
					return fmt.Errorf("%s: %w", ph.name, err)
				}
				per[c][p] = append(per[c][p], float64(el.Nanoseconds())/float64(ph.n))
			}
			if tr != nil {
				if err := tr.stop(); err != nil {
					return err
				}
			}
			fmt.Printf("round %d %-26s", r+1, cfg.name)
			for p := range phases {
				fmt.Printf(" %8.0f ns", per[c][p][r])
			}
			fmt.Println()
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "| operation | ops per round | no tracer | oomtrace (default) | oomtrace --alloc-refused | slowdown with --alloc-refused |\n|---|---|---|---|---|---|\n")
	for p, ph := range phases {
		med := make([]float64, len(allocConfigs))
		for c := range allocConfigs {
			med[c] = median(per[c][p])
		}
		fmt.Fprintf(&b, "| %s | %d | %.0f ns | %.0f ns (%+.1f%%) | %.0f ns | %+.1f%% |\n", ph.name, ph.n,
			med[0], med[1], 100*(med[1]-med[0])/med[0], med[2], 100*(med[2]-med[0])/med[0])
	}
	host, _ := os.Hostname()
	fmt.Fprintf(&b, "\nMedians of %d interleaved rounds (per operation). Measured %s on %s: kernel %s, %s, %d CPUs.\n",
		rounds, time.Now().UTC().Format("2006-01-02"), host, readTrim("/proc/sys/kernel/osrelease"), cpuModel(), numCPU())
	fmt.Print(b.String())
	if out == "" {
		return nil
	}
	return replaceSectionBetween(out, "<!-- bench-alloc:begin -->\n", "<!-- bench-alloc:end -->", b.String())
}

func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	return s[len(s)/2]
}
