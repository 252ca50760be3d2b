package procfs

import (
	"bytes"
	"fmt"
	"os"
	"strconv"

	"github.com/oomtrace/oomtrace/internal/kfile"
)

// ParseNumber parses a /proc file that holds one decimal number and a
// newline: oom_score_adj, oom_score.
func ParseNumber(data []byte) (int64, error) {
	n, err := strconv.ParseInt(string(bytes.TrimSpace(data)), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("parsing %q: %w", bytes.TrimSpace(data), err)
	}
	return n, nil
}

// ReadNumber reads /proc/PID/NAME, a one-number file (oom_score_adj,
// oom_score).
func ReadNumber(pid int, name string) (int64, error) {
	path := fmt.Sprintf("/proc/%d/%s", pid, name)
	var buf [32]byte
	data, err := kfile.ReadFile(path, buf[:])
	if err != nil {
		return 0, &os.PathError{Op: "read", Path: path, Err: err}
	}
	return ParseNumber(data)
}
