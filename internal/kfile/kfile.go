// Package kfile reads the small one-value files of kernel file systems
// (cgroupfs, /proc/sys) at the least cost in system calls: through a
// descriptor of their directory, with one openat and one read each. Such a
// file's whole value comes in the first read, so neither the EOF read nor
// an fstat nor a path walk from the root is needed.
package kfile

import (
	"bytes"
	"fmt"
	"strconv"

	"golang.org/x/sys/unix"
)

// ReadAt reads the file name of the directory dfd into buf and returns the
// bytes read. Open and read errors are the bare errno (ENOENT: no such
// file; ENODEV: a cgroup removed while read); a value that fills buf is an
// error, as it may have been cut.
func ReadAt(dfd int, name string, buf []byte) ([]byte, error) {
	fd, err := OpenAt(dfd, name, unix.O_RDONLY)
	if err != nil {
		return nil, err
	}
	defer Close(fd)
	for {
		n, err := Read(fd, buf)
		switch {
		case err != nil:
			return nil, err
		case n == len(buf):
			return nil, fmt.Errorf("%s: value longer than %d bytes", name, len(buf)-1)
		}
		return buf[:n], nil
	}
}

// Keyed finds "key value" in a flat-keyed file such as memory.stat,
// memory.events or /proc/vmstat.
func Keyed(data []byte, key string) (int64, bool) {
	for line := range bytes.Lines(data) {
		k, v, ok := bytes.Cut(bytes.TrimSpace(line), []byte{' '})
		if ok && string(k) == key {
			n, err := strconv.ParseInt(string(bytes.TrimSpace(v)), 10, 64)
			return n, err == nil
		}
	}
	return 0, false
}
