// Package psi reads the kernel's pressure stall information: the share of
// time tasks stalled waiting for memory (/proc/pressure/memory for the
// node, memory.pressure for a cgroup v2).
package psi

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"

	"github.com/oomtrace/oomtrace/kernel/cgroupfs"
	"golang.org/x/sys/unix"
)

// Stall is one line of a pressure file: the share of wall time (percent)
// over the last 10, 60 and 300 s, and the total stall time, µs.
type Stall struct {
	Avg10, Avg60, Avg300 float64
	TotalUs              uint64
}

// Pressure is a pressure file: some (at least one task stalled) and full
// (all non-idle tasks stalled at once).
type Pressure struct {
	Some, Full Stall
}

// ErrOff: the kernel has PSI built in but off (CONFIG_PSI_DEFAULT_DISABLED,
// Debian's choice), the files there refuse to be read.
var ErrOff = errors.New("PSI is off in this kernel (boot with psi=1)")

// ErrMissing: no such file, the kernel lacks PSI (CONFIG_PSI).
var ErrMissing = errors.New("this kernel has no PSI (CONFIG_PSI)")

// Read reads the pressure file at path through files, which keeps it open
// for the next read (nil: opened and closed). buf is scratch (256 bytes do).
func Read(files *cgroupfs.OpenFiles, path string, buf []byte) (Pressure, error) {
	data, err := files.Read(path, buf)
	switch {
	case errors.Is(err, unix.EOPNOTSUPP):
		return Pressure{}, ErrOff
	case errors.Is(err, unix.ENOENT):
		return Pressure{}, ErrMissing
	case err != nil:
		return Pressure{}, err
	}
	return Parse(data)
}

// Parse reads "some avg10=0.00 avg60=0.00 avg300=0.00 total=0" and its
// full line.
func Parse(data []byte) (Pressure, error) {
	var p Pressure
	seen := 0
	for line := range bytes.Lines(data) {
		f := bytes.Fields(line)
		if len(f) != 5 {
			continue
		}
		var s *Stall
		switch string(f[0]) {
		case "some":
			s = &p.Some
		case "full":
			s = &p.Full
		default:
			continue
		}
		for _, kv := range f[1:] {
			k, v, ok := bytes.Cut(kv, []byte{'='})
			if !ok {
				return p, fmt.Errorf("pressure line %q", bytes.TrimSpace(line))
			}
			var err error
			switch string(k) {
			case "avg10":
				s.Avg10, err = strconv.ParseFloat(string(v), 64)
			case "avg60":
				s.Avg60, err = strconv.ParseFloat(string(v), 64)
			case "avg300":
				s.Avg300, err = strconv.ParseFloat(string(v), 64)
			case "total":
				s.TotalUs, err = strconv.ParseUint(string(v), 10, 64)
			}
			if err != nil {
				return p, fmt.Errorf("pressure line %q: %w", bytes.TrimSpace(line), err)
			}
		}
		seen++
	}
	if seen == 0 {
		return p, fmt.Errorf("no some/full line in %q", data)
	}
	return p, nil
}
