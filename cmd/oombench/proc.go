package main

import (
	"bufio"
	"os"
	"os/exec"
	"sync"
	"time"
)

// proc is a running tracer (oomtrace or bpftrace) whose stdout lines are
// read as they come, and the kills it reported.
type proc struct {
	cmd     *exec.Cmd
	started time.Time
	done    chan struct{} // stdout closed

	mu        sync.Mutex
	kills     int
	latencies []time.Duration // from the kernel's record to the line read here
}

// start runs cmd and hands each stdout line to onLine, on one goroutine,
// until stdout closes. p must be in place before (onLine may use it).
func (p *proc) start(cmd *exec.Cmd, onLine func(line []byte)) error {
	out, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	cmd.Stderr = os.Stderr
	p.cmd, p.started, p.done = cmd, time.Now(), make(chan struct{})
	if err := cmd.Start(); err != nil {
		return err
	}
	go func() {
		defer close(p.done)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			onLine(sc.Bytes())
		}
	}()
	return nil
}

// record counts kills reported in one line, which the kernel recorded
// lat before it was read.
func (p *proc) record(kills int, lat time.Duration) {
	p.mu.Lock()
	p.kills += kills
	p.latencies = append(p.latencies, lat)
	p.mu.Unlock()
}

func (p *proc) pid() int { return p.cmd.Process.Pid }

func (p *proc) seen() (int, []time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.kills, append([]time.Duration(nil), p.latencies...)
}
