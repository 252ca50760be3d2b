package kmsg

import (
	"time"

	"golang.org/x/sys/unix"
)

// Monotonic is CLOCK_MONOTONIC now, the clock of a record's TsUsec.
func Monotonic() time.Duration {
	var t unix.Timespec
	_ = unix.ClockGettime(unix.CLOCK_MONOTONIC, &t)
	return time.Duration(t.Nano())
}

// BootTime is the wall-clock time CLOCK_MONOTONIC started from: a record's
// time is BootTime().Add(TsUsec microseconds).
func BootTime() time.Time {
	return time.Now().Add(-Monotonic())
}
