package oomtest

import (
	"errors"
	"os"
	"regexp"
	"strconv"
	"syscall"
)

// KillReport is the kernel's own account of a kill, from its log line
// "Killed process PID (COMM) total-vm:..kB, anon-rss:..kB, file-rss:..kB,
// shmem-rss:..kB, UID:.. pgtables:..kB oom_score_adj:..". It is an oracle
// independent of the tracer. Sizes are in kB, as the kernel prints them.
type KillReport struct {
	Pid                                 int
	AnonKB, FileKB, ShmemKB, PgtablesKB uint64
	UID                                 uint32
	OOMScoreAdj                         int
}

var killedRE = regexp.MustCompile(`Killed process (\d+) \(.*\) total-vm:\d+kB, anon-rss:(\d+)kB, file-rss:(\d+)kB, shmem-rss:(\d+)kB, UID:(\d+) pgtables:(\d+)kB oom_score_adj:(-?\d+)`)

// KernelKillReports reads the kernel log (/dev/kmsg, from its start) and
// returns the "Killed process" reports by pid. Kernels before 5.x print
// fewer fields; their lines are not matched.
func KernelKillReports() (map[int]KillReport, error) {
	reports := map[int]KillReport{}
	err := readKmsg(func(rec []byte) {
		m := killedRE.FindSubmatch(rec)
		if m == nil {
			return
		}
		num := func(i int) uint64 { v, _ := strconv.ParseUint(string(m[i]), 10, 64); return v }
		adj, _ := strconv.Atoi(string(m[7]))
		pid := int(num(1))
		reports[pid] = KillReport{
			Pid: pid, AnonKB: num(2), FileKB: num(3), ShmemKB: num(4),
			UID: uint32(num(5)), PgtablesKB: num(6), OOMScoreAdj: adj,
		}
	})
	return reports, err
}

// OOMHeader is the first line of the kernel's report of an OOM decision,
// "COMM invoked oom-killer: gfp_mask=0x...(NAMES), order=N, ...": the
// allocation's gfp mask and the kernel's own names for it. The kernel
// rate-limits these lines (10 per 5 s).
type OOMHeader struct {
	GFPMask uint32
	Names   string // as printed between the parentheses, "|"-separated
}

var headerRE = regexp.MustCompile(`invoked oom-killer: gfp_mask=(0x[0-9a-f]+)\(([^)]*)\), order=`)

// KernelOOMHeaders reads the kernel log (from its start) for the
// "invoked oom-killer" lines.
func KernelOOMHeaders() ([]OOMHeader, error) {
	var headers []OOMHeader
	err := readKmsg(func(rec []byte) {
		if m := headerRE.FindSubmatch(rec); m != nil {
			mask, _ := strconv.ParseUint(string(m[1]), 0, 32)
			headers = append(headers, OOMHeader{GFPMask: uint32(mask), Names: string(m[2])})
		}
	})
	return headers, err
}

// readKmsg calls fn with each record of the kernel log, from its start.
func readKmsg(fn func(rec []byte)) error {
	// Raw syscalls: an *os.File would hand the non-blocking fd to Go's poller,
	// which waits for more records instead of returning EAGAIN at the end.
	fd, err := syscall.Open("/dev/kmsg", syscall.O_RDONLY|syscall.O_NONBLOCK|syscall.O_CLOEXEC, 0)
	if err != nil {
		return &os.PathError{Op: "open", Path: "/dev/kmsg", Err: err}
	}
	defer syscall.Close(fd)
	buf := make([]byte, 8192)
	for {
		n, err := syscall.Read(fd, buf)
		if errors.Is(err, syscall.EAGAIN) {
			return nil
		}
		if errors.Is(err, syscall.EPIPE) {
			continue // records overwritten while reading: go on with the next
		}
		if err != nil {
			return &os.PathError{Op: "read", Path: "/dev/kmsg", Err: err}
		}
		fn(buf[:n])
	}
}
