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
	)
	flag.Parse()
	if err := run(*bin, *kills, *parallel, *out); err != nil {
		fmt.Fprintf(os.Stderr, "bench: %v\n", err)
		os.Exit(1)
	}
}

type result struct {
	name, value, note string
}

func run(bin string, kills, parallel int, out string) error {
	if os.Geteuid() != 0 {
		return fmt.Errorf("needs root: it loads BPF and provokes OOM kills in a scratch cgroup")
	}
	h, err := oomtest.FindHierarchy()
	if err != nil {
		return err
	}
	var results []result
	add := func(name, value, note string) {
		results = append(results, result{name, value, note})
		fmt.Printf("%-34s %-22s %s\n", name, value, note)
	}

	// Startup to ready, several times: the first run pays for cold caches.
	var startups []time.Duration
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
	slices.Sort(startups)
	add("startup to ready (median of 5)", ms(startups[2]), fmt.Sprintf("min %s, max %s", ms(startups[0]), ms(startups[4])))

	tr, err := startTracer(bin)
	if err != nil {
		return err
	}
	defer tr.stop()
	time.Sleep(time.Second)
	rss, hwm := tr.memory()
	add("idle RSS", kib(rss), "peak during startup "+kib(hwm))
	sw0 := tr.contextSwitches()
	time.Sleep(5 * time.Second)
	add("wake-ups while idle (5 s)", fmt.Sprint(tr.contextSwitches()-sw0), "context switches of all its threads; the oom_risk scan runs every 5 s")
	quiet, err := startTracer(bin, "--risk-threshold", "0")
	if err != nil {
		return err
	}
	time.Sleep(time.Second)
	sw0 = quiet.contextSwitches()
	time.Sleep(5 * time.Second)
	add("wake-ups while idle, oom_risk off", fmt.Sprint(quiet.contextSwitches()-sw0), "--risk-threshold 0: no timer at all")
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
	cpu0 := tr.cpuTime()
	start := time.Now()
	if err := storm(cg, kills, parallel); err != nil {
		return err
	}
	took := time.Since(start)
	after, _ := cg.OOMKills()
	vmAfter, _ := oomtest.VMStatOOMKills()
	seen := tr.waitKills(int(after-before), 10*time.Second)
	cpu := tr.cpuTime() - cpu0
	verdict := "every kill exactly once"
	if uint64(seen) != after-before || after-before != vmAfter-vmBefore {
		verdict = "MISMATCH"
	}
	add("storm: kills seen / kernel count", fmt.Sprintf("%d / %d", seen, after-before),
		fmt.Sprintf("%s (vmstat +%d); %d hogs, %d at once, in %.1f s", verdict, vmAfter-vmBefore, kills, parallel, took.Seconds()))
	add("storm: tracer CPU time", ms(cpu), fmt.Sprintf("%.0f µs per kill", float64(cpu.Microseconds())/float64(max(seen, 1))))
	rss, hwm = tr.memory()
	add("RSS after the storm", kib(rss), "peak "+kib(hwm))

	if out != "" {
		if err := writeMarkdown(out, results); err != nil {
			return err
		}
	}
	if verdict != "every kill exactly once" {
		return fmt.Errorf("the tracer saw %d kills, the kernel counted %d", seen, after-before)
	}
	return nil
}

// storm runs hogs into the cgroup's limit until n of them were OOM-killed.
func storm(cg *oomtest.Cgroup, n, parallel int) error {
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
	fmt.Fprintf(&b, "| measure | value | note |\n|---|---|---|\n")
	for _, r := range results {
		fmt.Fprintf(&b, "| %s | %s | %s |\n", r.name, r.value, r.note)
	}
	fmt.Fprintf(&b, "\nMeasured %s on %s: kernel %s, %s, %d CPUs.\n",
		time.Now().UTC().Format("2006-01-02"), host, readTrim("/proc/sys/kernel/osrelease"), cpuModel(), numCPU())
	return replaceSection(path, b.String())
}

// replaceSection puts the results between markers in the file, keeping the prose around them.
func replaceSection(path, body string) error {
	const begin, end = "<!-- bench:begin -->\n", "<!-- bench:end -->"
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
