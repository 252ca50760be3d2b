package explain

import (
	"testing"
	"time"

	"github.com/oomtrace/oomtrace/event"
)

func TestAllocSentence(t *testing.T) {
	at := time.Date(2026, 12, 1, 12, 0, 0, 123e6, time.UTC)
	gib := func(f float64) *uint64 { v := uint64(f * (1 << 30)); return &v }
	path := "/system.slice/redis.service"
	a := event.AllocRefused{
		Time: at, Syscall: "fork", Rule: "strict", Repeats: 3,
		Process: event.AllocProcess{Pid: 812, Comm: "redis-server"},
		Cgroup:  event.AllocCgroup{Path: &path},
		Commit:  event.Commit{CommittedBytes: gib(6.1), LimitBytes: gib(7.5), RequestBytes: 2 << 30, ReserveBytes: new(uint64)},
	}
	want := "2026-12-01T12:00:00.123Z fork of redis-server[812] refused: strict overcommit, 6.1 GiB committed + 2.0 GiB > 7.5 GiB limit; cgroup /system.slice/redis.service (3 refusals)"
	if got := (Style{}).AllocSentence(a); got != want {
		t.Errorf("strict:\n got %s\nwant %s", got, want)
	}
	a = event.AllocRefused{Time: at, Syscall: "mmap", Rule: "heuristic", Repeats: 1,
		Process: event.AllocProcess{Pid: 9, Comm: "big"},
		Commit:  event.Commit{RequestBytes: 1 << 40, RAMBytes: gib(8), SwapBytes: gib(0)}}
	want = "2026-12-01T12:00:00.123Z mmap of big[9] refused: heuristic overcommit, 1024.0 GiB > 8.0 GiB RAM + 0 KiB swap"
	if got := (Style{}).AllocSentence(a); got != want {
		t.Errorf("heuristic:\n got %s\nwant %s", got, want)
	}
	lim := uint64(256 << 20)
	a = event.AllocRefused{Time: at, Syscall: "mmap", Rule: "rlimit_as", Process: event.AllocProcess{Pid: 9, Comm: "big"},
		Commit: event.Commit{RequestBytes: 512 << 20, TotalVMBytes: 10 << 20, RlimitAS: &lim}}
	want = "2026-12-01T12:00:00.123Z mmap of big[9] refused: RLIMIT_AS, 10.0 MiB mapped + 512.0 MiB > 256.0 MiB"
	if got := (Style{}).AllocSentence(a); got != want {
		t.Errorf("rlimit_as:\n got %s\nwant %s", got, want)
	}
}
