package tracer

import (
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func kernelBoot(t *testing.T) uint64 {
	t.Helper()
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_BOOTTIME, &ts); err != nil {
		t.Fatal(err)
	}
	return uint64(ts.Nano())
}

// within says got lies between two kernel readings, with a microsecond of
// slack either way: the offset was taken a moment apart from its
// monotonic reading.
func within(t *testing.T, what string, lo, got, hi uint64) {
	t.Helper()
	if got+uint64(time.Microsecond) < lo || got > hi+uint64(time.Microsecond) {
		t.Errorf("%s: %d outside the kernel's [%d, %d]", what, got, lo, hi)
	}
}

// The offset-based boot clock agrees with the kernel's own reading, fresh
// and once its offset is due for renewal (a stale one, as after a
// suspend, is wrong by a whole second here).
func TestBootNowMatchesTheKernel(t *testing.T) {
	lo := kernelBoot(t)
	got := BootNow()
	within(t, "BootNow", lo, got, kernelBoot(t))

	stale := bootClock{mono: time.Now().Add(-bootClockTTL), bootNs: int64(lo) - int64(2*bootClockTTL)}
	lo = kernelBoot(t)
	boot, _ := stale.now()
	within(t, "after the TTL", lo, uint64(boot), kernelBoot(t))
}

func TestBootToWall(t *testing.T) {
	now := BootNow()
	wall := BootToWall(now - uint64(time.Second))
	if d := time.Since(wall); d < time.Second || d > time.Second+100*time.Millisecond {
		t.Fatalf("a stamp 1 s old converts to %v ago", d)
	}
}
