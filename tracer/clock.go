package tracer

import (
	"time"

	"golang.org/x/sys/unix"
)

// BootToWall converts a CLOCK_BOOTTIME stamp (bpf_ktime_get_boot_ns) to
// wall-clock time. The offset is taken fresh on each call: the wall clock can
// step (NTP, settimeofday) during months of uptime, the boot clock cannot.
func BootToWall(bootNs uint64) time.Time {
	var ts unix.Timespec
	now := time.Now()
	if err := unix.ClockGettime(unix.CLOCK_BOOTTIME, &ts); err != nil {
		return now
	}
	age := time.Duration(ts.Nano() - int64(bootNs))
	return now.Add(-age)
}

// BootNow is CLOCK_BOOTTIME in ns, the clock of the BPF records.
func BootNow() uint64 {
	var ts unix.Timespec
	_ = unix.ClockGettime(unix.CLOCK_BOOTTIME, &ts)
	return uint64(ts.Nano())
}

// Age is how long ago, by the boot clock, the kernel recorded k.
func (k *Kill) Age() time.Duration {
	now := BootNow()
	if now < k.BootNs {
		return 0
	}
	return time.Duration(now - k.BootNs)
}
