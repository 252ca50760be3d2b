package cgroupfs

import (
	"bytes"
	"fmt"
	"math"
	"os"
	"strconv"

	"github.com/oomtrace/oomtrace/internal/kfile"
)

// unlimited is PAGE_COUNTER_MAX in bytes (LONG_MAX rounded down to a page:
// 9223372036854771712 with 4 KiB pages), what an unlimited v1 counter reads.
var unlimited = int64(math.MaxInt64 / os.Getpagesize() * os.Getpagesize())

// ReadValueAt reads the byte count in the file name of the directory dfd
// (limit_in_bytes, memory.max, usage...), as kfile.ReadAt does: nil for
// "max" and for v1's huge unlimited. Open and read errors are the bare
// errno (ENOENT: no such file; ENODEV: the cgroup was removed while read).
func ReadValueAt(dfd int, name string) (*int64, error) {
	var buf [32]byte // the longest value, v1's unlimited, is 20 digits
	data, err := kfile.ReadAt(dfd, name, buf[:])
	if err != nil {
		return nil, err
	}
	return ParseValue(string(bytes.TrimSpace(data)))
}

// ParseValue parses a byte count: nil for "max" and for v1's huge unlimited.
func ParseValue(s string) (*int64, error) {
	if s == "max" {
		return nil, nil
	}
	v, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return nil, fmt.Errorf("parsing %q: %w", s, err)
	}
	if v >= uint64(unlimited) {
		return nil, nil
	}
	n := int64(v)
	return &n, nil
}
