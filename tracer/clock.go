package tracer

import (
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// bootClock reads CLOCK_BOOTTIME, the clock of the BPF records
// (bpf_ktime_get_boot_ns), without a system call on each read: the boot
// clock is the monotonic clock (read through the vDSO by time.Now) plus
// the time spent suspended, so it is taken as a monotonic offset from one
// real reading, renewed once per bootClockTTL to catch a suspend.
//
// Why: a system call made while the Go runtime's sysmon thread is asleep
// wakes it, and it then polls every 20 µs until the daemon is idle again.
// The first system calls of a kill's path were these clock reads, so sysmon
// ran through the whole of it: 3 to 4 context switches per kill, measured.
// With them gone, the kill's one write wakes it, near the end.
type bootClock struct {
	mu     sync.Mutex
	mono   time.Time // time.Now() at the real reading
	bootNs int64     // CLOCK_BOOTTIME then
}

// bootClockTTL bounds how stale the offset can be: a read within this long
// after resuming from suspend is early by the time suspended.
const bootClockTTL = time.Second

var clock bootClock

func (c *bootClock) now() (boot int64, wall time.Time) {
	wall = time.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.mono.IsZero() || wall.Sub(c.mono) >= bootClockTTL {
		var ts unix.Timespec
		if err := unix.ClockGettime(unix.CLOCK_BOOTTIME, &ts); err == nil {
			c.mono, c.bootNs = time.Now(), ts.Nano()
		}
	}
	return c.bootNs + int64(wall.Sub(c.mono)), wall
}

// BootToWall converts a CLOCK_BOOTTIME stamp to wall-clock time. The offset
// between the two is taken at each call: the wall clock can step (NTP,
// settimeofday) during months of uptime, the boot clock cannot.
func BootToWall(bootNs uint64) time.Time {
	boot, wall := clock.now()
	return wall.Add(-time.Duration(boot - int64(bootNs)))
}

// BootNow is CLOCK_BOOTTIME in ns.
func BootNow() uint64 {
	boot, _ := clock.now()
	return uint64(boot)
}

// Age is how long ago, by the boot clock, the kernel recorded k.
func (k *Kill) Age() time.Duration {
	now := BootNow()
	if now < k.BootNs {
		return 0
	}
	return time.Duration(now - k.BootNs)
}
