package procfs

import (
	"bytes"
	"path/filepath"
	"strconv"

	"github.com/oomtrace/oomtrace/internal/kfile"
)

// Meminfo is /proc/meminfo's lines in kB, as bytes, by name ("MemTotal",
// "Committed_AS", ...). A name the kernel does not print is absent. The
// HugePages_ counts, which have no unit, are left out.
type Meminfo map[string]uint64

// ReadMeminfo reads procRoot's meminfo ("/proc" except in tests). buf is
// scratch, grown as needed (nil will do).
func ReadMeminfo(procRoot string, buf []byte) (Meminfo, error) {
	data, err := kfile.ReadFile(filepath.Join(procRoot, "meminfo"), buf)
	if err != nil {
		return nil, err
	}
	return ParseMeminfo(data), nil
}

// ParseMeminfo parses "Name:   123 kB" lines.
func ParseMeminfo(data []byte) Meminfo {
	m := Meminfo{}
	for line := range bytes.Lines(data) {
		name, rest, ok := bytes.Cut(line, []byte{':'})
		if !ok {
			continue
		}
		f := bytes.Fields(rest)
		if len(f) != 2 || string(f[1]) != "kB" {
			continue
		}
		if kb, err := strconv.ParseUint(string(f[0]), 10, 64); err == nil {
			m[string(name)] = kb << 10
		}
	}
	return m
}
