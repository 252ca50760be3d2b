// Package kmsg reads the kernel log (/dev/kmsg) and parses the OOM killer's
// own lines in it: "Killed process ..." (never rate-limited) and the
// "oom-kill:constraint=..." summary (rate-limited: 10 per 5 s).
package kmsg

import (
	"errors"
	"os"
	"regexp"
	"strconv"
	"strings"
	"syscall"
)

// Record is one /dev/kmsg record: "prio,seq,ts_usec,flags;message\n",
// continuation lines (" KEY=value") dropped.
type Record struct {
	Seq    uint64
	TsUsec uint64 // CLOCK_MONOTONIC at printk, in microseconds
	Msg    string
}

// ParseRecord parses one record as a read(2) of /dev/kmsg returns it.
func ParseRecord(b []byte) (Record, bool) {
	head, msg, ok := strings.Cut(string(b), ";")
	if !ok {
		return Record{}, false
	}
	f := strings.SplitN(head, ",", 4)
	if len(f) < 3 {
		return Record{}, false
	}
	seq, err1 := strconv.ParseUint(f[1], 10, 64)
	ts, err2 := strconv.ParseUint(f[2], 10, 64)
	if err1 != nil || err2 != nil {
		return Record{}, false
	}
	msg, _, _ = strings.Cut(msg, "\n")
	return Record{Seq: seq, TsUsec: ts, Msg: msg}, true
}

// Path is the kernel log device.
const Path = "/dev/kmsg"

// Read calls fn with each record whose sequence number is above after
// (every record when all), oldest first, until the end of the buffer, and
// returns the last sequence number read (after when there was none).
// Records overwritten while reading are skipped. Opening needs CAP_SYSLOG
// when kernel.dmesg_restrict is set.
func Read(after uint64, all bool, fn func(Record)) (last uint64, err error) {
	// Raw syscalls: an *os.File would hand the non-blocking fd to Go's
	// poller, which waits for more records instead of returning EAGAIN.
	fd, err := syscall.Open(Path, syscall.O_RDONLY|syscall.O_NONBLOCK|syscall.O_CLOEXEC, 0)
	if err != nil {
		return after, &os.PathError{Op: "open", Path: Path, Err: err}
	}
	defer syscall.Close(fd)
	last = after
	buf := make([]byte, 8192)
	for {
		n, err := syscall.Read(fd, buf)
		if errors.Is(err, syscall.EAGAIN) {
			return last, nil
		}
		if errors.Is(err, syscall.EPIPE) {
			continue // overwritten while reading: go on with the next
		}
		if err != nil {
			return last, &os.PathError{Op: "read", Path: Path, Err: err}
		}
		r, ok := ParseRecord(buf[:n])
		if !ok {
			continue
		}
		if !all && r.Seq <= after {
			continue // consumed by an earlier run
		}
		last = max(last, r.Seq)
		fn(r)
	}
}

// Kill is the kernel's "Killed process" line. Sizes in kB, as printed.
type Kill struct {
	Pid         uint32
	Comm        string
	TotalVMKB   uint64
	AnonKB      uint64
	FileKB      uint64
	ShmemKB     uint64
	UID         uint32
	PgtablesKB  *uint64 // nil on kernels that do not print it
	OOMScoreAdj *int32  // nil on kernels that do not print it
}

// "Killed process 16657 (cand-web) total-vm:1781320kB, anon-rss:83328kB,
// file-rss:14616kB, shmem-rss:0kB, UID:0 pgtables:340kB oom_score_adj:0",
// after "Memory cgroup out of memory: " or "Out of memory: ". Since 5.3
// (mm/oom_kill.c __oom_kill_process) the kernel prints UID, pgtables and
// oom_score_adj; 4.x printed only the rss fields.
var (
	killedRE = regexp.MustCompile(`Killed process (\d+) \((.*)\) total-vm:(\d+)kB, anon-rss:(\d+)kB, file-rss:(\d+)kB, shmem-rss:(\d+)kB(?:, UID:(\d+))?(?: pgtables:(\d+)kB)?(?: oom_score_adj:(-?\d+))?`)
	uidRE    = regexp.MustCompile(`UID:(\d+)`)
)

// ParseKill parses a "Killed process" message.
func ParseKill(msg string) (Kill, bool) {
	m := killedRE.FindStringSubmatch(msg)
	if m == nil {
		return Kill{}, false
	}
	num := func(s string) uint64 { v, _ := strconv.ParseUint(s, 10, 64); return v }
	k := Kill{
		Pid: uint32(num(m[1])), Comm: m[2], TotalVMKB: num(m[3]), AnonKB: num(m[4]),
		FileKB: num(m[5]), ShmemKB: num(m[6]),
	}
	if m[7] != "" {
		k.UID = uint32(num(m[7]))
	} else if u := uidRE.FindStringSubmatch(msg); u != nil {
		k.UID = uint32(num(u[1]))
	}
	if m[8] != "" {
		v := num(m[8])
		k.PgtablesKB = &v
	}
	if m[9] != "" {
		v, _ := strconv.ParseInt(m[9], 10, 32)
		a := int32(v)
		k.OOMScoreAdj = &a
	}
	return k, true
}

// Summary is the "oom-kill:constraint=..." line printed just before a
// "Killed process" line (rate-limited by the kernel).
type Summary struct {
	Constraint string // CONSTRAINT_MEMCG, CONSTRAINT_NONE...
	OOMMemcg   string // "" for a global OOM (",global_oom")
	TaskMemcg  string
	Task       string
	Pid        uint32
	UID        uint32
}

var (
	summaryRE   = regexp.MustCompile(`^oom-kill:constraint=(\w+),`)
	oomMemcgRE  = regexp.MustCompile(`,oom_memcg=(.*?),task_memcg=`)
	taskMemcgRE = regexp.MustCompile(`,task_memcg=(.*),task=`)
	taskRE      = regexp.MustCompile(`,task=(.*),pid=(\d+),uid=(\d+)$`)
)

// ParseSummary parses an "oom-kill:constraint=...,nodemask=...,cpuset=...,
// mems_allowed=...,oom_memcg=...,task_memcg=...,task=...,pid=...,uid=..."
// message (",global_oom" in place of oom_memcg for a global OOM).
func ParseSummary(msg string) (Summary, bool) {
	m := summaryRE.FindStringSubmatch(msg)
	t := taskRE.FindStringSubmatch(msg)
	if m == nil || t == nil {
		return Summary{}, false
	}
	s := Summary{Constraint: m[1], Task: t[1]}
	pid, _ := strconv.ParseUint(t[2], 10, 32)
	uid, _ := strconv.ParseUint(t[3], 10, 32)
	s.Pid, s.UID = uint32(pid), uint32(uid)
	if o := oomMemcgRE.FindStringSubmatch(msg); o != nil {
		s.OOMMemcg = o[1]
	}
	if tm := taskMemcgRE.FindStringSubmatch(msg); tm != nil {
		s.TaskMemcg = tm[1]
	}
	return s, true
}

// Backfilled is a kill the kernel logged, with the summary line that came
// just before it for the same pid, if any.
type Backfilled struct {
	Record  Record
	Kill    Kill
	Summary *Summary
}

// Collector pairs the records Read hands it into kills.
type Collector struct {
	Kills   []Backfilled
	pending *Summary
}

// Add takes the next record.
func (c *Collector) Add(r Record) {
	if !strings.Contains(r.Msg, "oom-kill:") && !strings.Contains(r.Msg, "Killed process") {
		return // most of the log: no regexp for it
	}
	if s, ok := ParseSummary(r.Msg); ok {
		c.pending = &s
		return
	}
	k, ok := ParseKill(r.Msg)
	if !ok {
		return
	}
	b := Backfilled{Record: r, Kill: k}
	if c.pending != nil && c.pending.Pid == k.Pid {
		b.Summary = c.pending
	}
	c.pending = nil
	c.Kills = append(c.Kills, b)
}
