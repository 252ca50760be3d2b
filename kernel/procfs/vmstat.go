package procfs

import (
	"errors"
	"os"
	"strings"

	"github.com/oomtrace/oomtrace/internal/kfile"
)

// VMStatOOMKill is /proc/vmstat oom_kill: every OOM kill on the machine
// since boot, the kernel's own count that the ledger keeps and the tests
// count against.
func VMStatOOMKill() (uint64, error) {
	data, err := os.ReadFile("/proc/vmstat")
	if err != nil {
		return 0, err
	}
	n, ok := kfile.Keyed(data, "oom_kill")
	if !ok || n < 0 {
		return 0, errors.New("/proc/vmstat: no oom_kill line")
	}
	return uint64(n), nil
}

// BootID is /proc/sys/kernel/random/boot_id: another one, another boot (the
// kernel's counters started again).
func BootID() (string, error) {
	data, err := os.ReadFile("/proc/sys/kernel/random/boot_id")
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(data)), nil
}
