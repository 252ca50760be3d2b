// Command bench measures the oomtrace binary: startup to ready, idle memory
// and wake-ups, and a storm of real OOM kills in a scratch memory cgroup,
// counted against the kernel. It prints a table and writes it to a Markdown
// file (make bench: docs/benchmarks.md). Needs root.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/oomtrace/oomtrace/internal/oomtest"
)

func main() {
	oomtest.MaybeRunHog()
	var (
		bin      = flag.String("bin", "bin/oomtrace", "the oomtrace binary to measure")
		kills    = flag.Int("kills", 500, "OOM kills in the storm")
		parallel = flag.Int("parallel", 4, "hogs running at once")
		out      = flag.String("out", "", "also write the results as Markdown to this file")
		singles  = flag.Int("singles", 100, "OOM kills one at a time, for latency without a storm")
		profile  = flag.String("cpu-profile", "", "write the measured oomtrace's CPU profile (storm and single kills) to this file")
		alloc    = flag.Bool("alloc-overhead", false, "measure only what --alloc-refused costs a syscall-heavy workload (mmap, brk, fork), against no tracer and the default tracer, and write that section of -out")
		rounds   = flag.Int("alloc-rounds", 5, "interleaved rounds of -alloc-overhead")
		scale    = flag.Int("alloc-scale", 10, "-alloc-overhead's operations per round, in tenths of the default (1M mmaps, 1M brks, 2000 forks, 2M getppids)")
	)
	flag.Parse()
	if *alloc {
		if err := allocOverhead(*bin, *rounds, *scale, *out); err != nil {
			fmt.Fprintf(os.Stderr, "bench: %v\n", err)
			os.Exit(1)
		}
		return
	}
	if err := run(*bin, *kills, *parallel, *singles, *out, *profile); err != nil {
		fmt.Fprintf(os.Stderr, "bench: %v\n", err)
		os.Exit(1)
	}
}

type result struct {
	name, oomtrace, bpftrace, note string
}

func run(bin string, kills, parallel, singles int, out, profile string) error {
	if os.Geteuid() != 0 {
		return fmt.Errorf("needs root: it loads BPF and provokes OOM kills in a scratch cgroup")
	}
	h, err := oomtest.FindHierarchy()
	if err != nil {
		return err
	}
	var results []result
	add := func(name, o, b, note string) {
		results = append(results, result{name, o, b, note})
		fmt.Printf("%-30s %-14s %-14s %s\n", name, o, b, note)
	}
	fmt.Printf("%-30s %-14s %-14s %s\n", "", "oomtrace", "bpftrace", "")

	// Startup to ready, several times: the first run pays for cold caches.
	var startups, bstartups []time.Duration
	for i := 0; i < 5; i++ {
		tr, err := startTracer(bin)
		if err != nil {
			return err
		}
		startups = append(startups, tr.startup)
		if err := tr.stop(); err != nil {
			return err
		}
	}
	for i := 0; i < 3; i++ {
		b, err := startBpftrace()
		if err != nil {
			return err
		}
		bstartups = append(bstartups, b.startup)
		b.stop()
	}
	slices.Sort(startups)
	slices.Sort(bstartups)
	add("startup to ready (median)", ms(startups[2]), ms(bstartups[1]),
		fmt.Sprintf("oomtrace: 5 starts, min %s max %s; bpftrace: 3 starts, to its BEGIN probe", ms(startups[0]), ms(startups[4])))

	// Both attached at once, on the same storm.
	var profArgs []string
	if profile != "" {
		profArgs = []string{"--cpu-profile", profile}
	}
	tr, err := startTracer(bin, profArgs...)
	if err != nil {
		return err
	}
	defer tr.stop()
	bt, err := startBpftrace()
	if err != nil {
		return err
	}
	defer bt.stop()
	// A third, without the candidate list, on the same storm: what the
	// list costs per kill (here, in mark_victim mode, the model's /proc
	// reads; where oom_badness() is hooked, its BPF programs too).
	noCands, err := startTracer(bin, "--candidates", "0")
	if err != nil {
		return err
	}
	defer noCands.stop()
	time.Sleep(time.Second)
	rss, _ := memory(tr.pid())
	brss, _ := memory(bt.pid())
	add("idle RSS", kib(rss), kib(brss), "")
	sw0, bsw0 := contextSwitches(tr.pid()), contextSwitches(bt.pid())
	time.Sleep(5 * time.Second)
	add("wake-ups while idle (5 s)", fmt.Sprint(contextSwitches(tr.pid())-sw0), fmt.Sprint(contextSwitches(bt.pid())-bsw0),
		"context switches of all threads; oomtrace with its defaults, the oom_risk warning on (kernel notifications on cgroup v1)")
	quiet, err := startTracer(bin, "--risk-threshold", "0")
	if err != nil {
		return err
	}
	time.Sleep(time.Second)
	sw0 = contextSwitches(quiet.pid())
	time.Sleep(5 * time.Second)
	add("wake-ups while idle, oom_risk off", fmt.Sprint(contextSwitches(quiet.pid())-sw0), "", "oomtrace --risk-threshold 0: no timer at all")
	if err := quiet.stop(); err != nil {
		return err
	}

	cg, err := oomtest.CreateCgroup(h, nil, fmt.Sprintf("bench-%d", os.Getpid()), 32<<20)
	if err != nil {
		return err
	}
	defer cg.Remove()
	before, err := cg.OOMKills()
	if err != nil {
		return err
	}
	vmBefore, _ := oomtest.VMStatOOMKills()
	hist0, err := tr.latency("written")
	if err != nil {
		return err
	}
	cpu0, bcpu0, ncpu0 := cpuTime(tr.pid()), cpuTime(bt.pid()), cpuTime(noCands.pid())
	start := time.Now()
	if err := storm(cg, kills, parallel, nil); err != nil {
		return err
	}
	took := time.Since(start)
	after, _ := cg.OOMKills()
	vmAfter, _ := oomtest.VMStatOOMKills()
	counted := int(after - before)
	tr.waitKills(counted, 10*time.Second)
	seen, lat := tr.seen()
	bseen, blat := bt.seen()
	cpu, bcpu, ncpu := cpuTime(tr.pid())-cpu0, cpuTime(bt.pid())-bcpu0, cpuTime(noCands.pid())-ncpu0
	nseen, _ := noCands.seen()
	// The same storm again with the console quiet. Without
	// CONFIG_IRQ_TIME_ACCOUNTING (the CI host has it off) the time the
	// kernel spends printing "Killed process" on the serial console, from
	// interrupt work, is charged to whichever task it interrupts: in the
	// storm above, some 100-150 µs per kill landed on each tracer, and more
	// on whichever woke nearer the print. Quiet, CPU time is the tracer's
	// own work.
	stormLat, stormBlat := lat, blat
	var qseen, qbseen, qnseen int
	var qcpu, qbcpu, qncpu time.Duration
	var contextCPU time.Duration
	var contextReadsN int
	if restore, quieted, err := quietConsole(); err != nil {
		return err
	} else if quieted {
		s0, b0, n0 := len(lat), len(blat), nseen
		c0, bc0, nc0 := cpuTime(tr.pid()), cpuTime(bt.pid()), cpuTime(noCands.pid())
		k0, _ := cg.OOMKills()
		err := storm(cg, kills, parallel, nil)
		k1, _ := cg.OOMKills()
		if err == nil {
			tr.waitKills(int(k1-before), 10*time.Second)
			noCands.waitKills(int(k1-k0)+n0, 10*time.Second)
			all, _ := tr.seen()
			ball, _ := bt.seen()
			nall, _ := noCands.seen()
			qseen, qbseen, qnseen = all-s0, ball-b0, nall-n0
			qcpu, qbcpu, qncpu = cpuTime(tr.pid())-c0, cpuTime(bt.pid())-bc0, cpuTime(noCands.pid())-nc0
			if qseen != int(k1-k0) {
				err = fmt.Errorf("oomtrace saw %d kills in the quiet storm, the kernel counted %d", qseen, k1-k0)
			}
		}
		if err == nil {
			// Once more, for what the context's files cost by themselves,
			// read by this program after each kill (not in the storm
			// above: its reads would compete with the tracers').
			reads := startContextReads(h, cg)
			err = storm(cg, kills, parallel, reads.killed)
			var cerr error
			contextCPU, contextReadsN, cerr = reads.stop()
			if err == nil && cerr != nil {
				err = fmt.Errorf("reading the kill's context files: %w", cerr)
			}
		}
		if rerr := restore(); rerr != nil && err == nil {
			err = rerr
		}
		if err != nil {
			return err
		}
		k2, _ := cg.OOMKills()
		tr.waitKills(int(k2-before), 10*time.Second)
		// The single kills below take their latencies after these.
		_, lat = tr.seen()
		_, blat = bt.seen()
	}
	// Only for the storms: the single kills below compare two tracers, as
	// before it came.
	if err := noCands.stop(); err != nil {
		return err
	}
	verdict := func(n int) string {
		switch {
		case n == counted:
			return "exact"
		case n > counted:
			return fmt.Sprintf("+%d over", n-counted)
		}
		return fmt.Sprintf("%d missed", counted-n)
	}
	add("kills seen / kernel count", fmt.Sprintf("%d / %d", seen, counted), fmt.Sprintf("%d / %d", bseen, counted),
		fmt.Sprintf("oomtrace %s, bpftrace %s (one line per mark_victim hit); vmstat +%d; %d hogs, %d at once, in %.1f s",
			verdict(seen), verdict(bseen), vmAfter-vmBefore, kills, parallel, took.Seconds()))
	perKill := func(d time.Duration, n int) float64 { return float64(d.Microseconds()) / float64(max(n, 1)) }
	us := func(d time.Duration, n int) string { return fmt.Sprintf("%.0f µs", perKill(d, n)) }
	if qseen > 0 {
		add("CPU per kill, console quiet", us(qcpu, qseen), us(qbcpu, qbseen),
			fmt.Sprintf("a second storm of %d, the console quiet: each tool's own work (bpftrace per line printed, %d lines)", qseen, qbseen))
		add("CPU per kill, console quiet: the context's kernel files alone", us(contextCPU, contextReadsN), "",
			fmt.Sprintf("this program read, after each of %d kills of that storm, the files oom.memcg.stat, .events, .psi and .top come from (the cgroup's /proc files at most every 100 ms), with the daemon's readers, on one thread: the kernel's part of the line's content; of oomtrace's Go code only the readers' parsing is in it", contextReadsN))
		add("CPU per kill, console quiet, --candidates 0", us(qncpu, qnseen), "",
			fmt.Sprintf("a third tracer on the same storms, without the candidate list: the list costs %.0f µs per kill (%s hooks, so the model's /proc reads of the OOM cgroup)",
				perKill(qcpu, qseen)-perKill(qncpu, qnseen), tr.attach()))
	}
	add("CPU per kill, console on", us(cpu, seen), us(bcpu, bseen),
		fmt.Sprintf("the first storm (CPU time %s and %s): the console's printing is charged to whichever task it interrupts, not measured work; --candidates 0: %s", ms(cpu), ms(bcpu), us(ncpu, nseen)))
	add("latency in the storm, p50", ms(percentile(stormLat, 50)), ms(percentile(stormBlat, 50)), "kernel timestamp to the line read by this program; the hogs load both CPUs")
	add("latency in the storm, p99", ms(percentile(stormLat, 99)), ms(percentile(stormBlat, 99)), "no Docker here: no cache misses")
	hist1, err := tr.latency("written")
	if err != nil {
		return err
	}
	add("written within 2 ms, in the storms", hist1.since(hist0).within(2*time.Millisecond), "",
		"the three storms (the third with this program's context reads), on the daemon's own clock (oomtrace_kill_latency_seconds): kernel record to line written, without this program's wake-up")
	// Latency without a storm: kills one at a time, each hog started
	// 100 ms after the last one died, so nothing but the dying victim
	// competes with the tracers for the CPUs.
	hist := hist1
	singleKills := func(label string) error {
		n0, bn0 := len(lat), len(blat)
		for i := 0; i < singles; i++ {
			if err := storm(cg, 1, 1, nil); err != nil {
				return err
			}
			time.Sleep(100 * time.Millisecond)
		}
		time.Sleep(time.Second)
		_, lat = tr.seen()
		_, blat = bt.seen()
		l, bl := lat[min(n0, len(lat)):], blat[min(bn0, len(blat)):]
		next, err := tr.latency("written")
		if err != nil {
			return err
		}
		add("latency, one at a time"+label+", p50", ms(percentile(l, 50)), ms(percentile(bl, 50)), fmt.Sprintf("%d and %d kills, 100 ms apart", len(l), len(bl)))
		add("latency, one at a time"+label+", p99", ms(percentile(l, 99)), ms(percentile(bl, 99)), "")
		single := next.since(hist)
		hist = next
		add("written within 2 ms, one at a time"+label, single.within(2*time.Millisecond), "",
			fmt.Sprintf("the daemon's own clock; within 0.5 ms: %s, 1 ms: %s, 5 ms: %s", single.within(500*time.Microsecond), single.within(time.Millisecond), single.within(5*time.Millisecond)))
		return nil
	}
	if err := singleKills(""); err != nil {
		return err
	}
	// The kernel writes "Killed process ..." (KERN_ERR) to the console
	// right after mark_victim; on a VM's serial console that holds a CPU
	// for 1-2 ms, and a tracer woken there waits. Once more with the
	// console quiet, to show what the machine, not the tracer, costs.
	if restore, quieted, err := quietConsole(); err != nil {
		return err
	} else if quieted {
		err := singleKills(", console quiet")
		if rerr := restore(); rerr != nil && err == nil {
			err = rerr
		}
		if err != nil {
			return err
		}
	}
	rss, hwm := memory(tr.pid())
	brss, bhwm := memory(bt.pid())
	add("RSS after the storm (peak)", kib(rss)+" ("+kib(hwm)+")", kib(brss)+" ("+kib(bhwm)+")", "")

	if out != "" {
		if err := writeMarkdown(out, results); err != nil {
			return err
		}
	}
	if seen != counted || uint64(counted) != vmAfter-vmBefore {
		return fmt.Errorf("oomtrace saw %d kills in the storm, the kernel counted %d", seen, counted)
	}
	// The kills one at a time count too.
	final, err := cg.OOMKills()
	if err != nil {
		return err
	}
	if all, _ := tr.seen(); uint64(all) != final-before {
		return fmt.Errorf("oomtrace saw %d kills in all, the kernel counted %d", all, final-before)
	}
	return nil
}

// quietConsole lowers the console log level below KERN_ERR, so the OOM
// killer's "Killed process" line stays in the kernel log and off the
// console, and returns how to put it back. quieted is false when the
// console already printed nothing of the kind.
func quietConsole() (restore func() error, quieted bool, err error) {
	const file = "/proc/sys/kernel/printk"
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, false, err
	}
	f := strings.Fields(string(data))
	if len(f) != 4 {
		return nil, false, fmt.Errorf("%s: %q", file, data)
	}
	if level, err := strconv.Atoi(f[0]); err != nil || level <= 3 {
		return nil, false, err
	}
	saved := strings.Join(f, " ")
	if err := os.WriteFile(file, []byte("1 "+strings.Join(f[1:], " ")), 0); err != nil {
		return nil, false, err
	}
	return func() error { return os.WriteFile(file, []byte(saved), 0) }, true, nil
}

func percentile(ds []time.Duration, p int) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	slices.Sort(ds)
	i := (len(ds)*p + 99) / 100
	return ds[min(max(i-1, 0), len(ds)-1)]
}

// storm runs hogs into the cgroup's limit until n of them were OOM-killed,
// calling onKill (nil: nothing) after each kill.
func storm(cg *oomtest.Cgroup, n, parallel int, onKill func()) error {
	errs := make(chan error, parallel)
	jobs := make(chan struct{})
	for w := 0; w < parallel; w++ {
		go func() {
			for range jobs {
				p, err := oomtest.Hog{Cgroup: cg, MB: 128, Comm: "bench-hog"}.Start(context.Background())
				if err == nil {
					var killed bool
					killed, err = p.Wait()
					if err == nil && !killed {
						err = fmt.Errorf("a hog was not killed")
					}
					if killed && onKill != nil {
						onKill()
					}
				}
				errs <- err
			}
		}()
	}
	go func() {
		for i := 0; i < n; i++ {
			jobs <- struct{}{}
		}
		close(jobs)
	}()
	var first error
	for i := 0; i < n; i++ {
		if err := <-errs; err != nil && first == nil {
			first = err
		}
	}
	return first
}

func writeMarkdown(path string, results []result) error {
	var b strings.Builder
	host, _ := os.Hostname()
	fmt.Fprintf(&b, "| measure | oomtrace | bpftrace | note |\n|---|---|---|---|\n")
	for _, r := range results {
		fmt.Fprintf(&b, "| %s | %s | %s | %s |\n", r.name, r.oomtrace, r.bpftrace, r.note)
	}
	fmt.Fprintf(&b, "\nMeasured %s on %s: kernel %s, %s, %d CPUs.\n",
		time.Now().UTC().Format("2006-01-02"), host, readTrim("/proc/sys/kernel/osrelease"), cpuModel(), numCPU())
	return replaceSection(path, b.String())
}

// replaceSection puts the results between markers in the file, keeping the prose around them.
func replaceSection(path, body string) error {
	return replaceSectionBetween(path, "<!-- bench:begin -->\n", "<!-- bench:end -->", body)
}

// replaceSectionBetween puts body between the markers begin and end.
func replaceSectionBetween(path, begin, end, body string) error {
	old, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		return err
	}
	text := string(old)
	i, j := strings.Index(text, begin), strings.Index(text, end)
	if i < 0 || j < i {
		text = text + "\n" + begin + end + "\n"
		i, j = strings.Index(text, begin), strings.Index(text, end)
	}
	text = text[:i+len(begin)] + body + text[j:]
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return os.WriteFile(path, []byte(text), 0o644)
}

func ms(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d.Microseconds())/1000) }
func kib(k int) string          { return fmt.Sprintf("%.1f MiB", float64(k)/1024) }
