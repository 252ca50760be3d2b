package cgroups

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/oomtrace/oomtrace/internal/kfile"
	"golang.org/x/sys/unix"
)

// Memcg is one memory cgroup's limits and usage, in bytes.
//
// A nil limit means no limit of that kind is enforced there: "max", a v1
// value at or above the kernel's PAGE_COUNTER_MAX (v1 has no "max"), or no
// such file (the root has none; memsw needs swap accounting; v1 has no
// memory.high, v2 no memsw). JSON shows it as null. A nil usage is unknown.
type Memcg struct {
	Path       string `json:"path"`
	Limit      *int64 `json:"limit"`       // memory.max (v2), memory.limit_in_bytes (v1): the OOM limit
	High       *int64 `json:"high"`        // memory.high (v2): throttles, never OOM-kills
	SwapLimit  *int64 `json:"swap_limit"`  // memory.swap.max (v2): swap alone
	MemSwLimit *int64 `json:"memsw_limit"` // memory.memsw.limit_in_bytes (v1): memory plus swap
	Usage      *int64 `json:"usage"`       // memory.current (v2), memory.usage_in_bytes (v1)
	SwapUsage  *int64 `json:"swap_usage"`  // memory.swap.current (v2)
	MaxUsage   *int64 `json:"max_usage"`   // memory.peak (v2, 5.19+), memory.max_usage_in_bytes (v1)
	// Swappiness is memory.swappiness (v1 only: a v2 memcg uses vm.swappiness).
	Swappiness *int64 `json:"swappiness,omitempty"`
	// Removed: the directory was gone when read, every field is nil.
	Removed bool `json:"removed,omitempty"`
}

// Limits is the memory cgroup at a path and all its ancestors.
type Limits struct {
	// Chain runs leaf first: Chain[0] is the cgroup itself, the last
	// element the hierarchy's root.
	Chain []Memcg `json:"chain"`
	// Effective is the smallest Limit on the chain, the most the leaf can
	// use (a child limited to 500M under a parent limited to 200M gets
	// 200M); nil when nothing on the chain is limited. EffectivePath is
	// the cgroup that holds it, the innermost one on a tie (the kernel
	// charges leaf first, so that one fails first).
	Effective     *int64 `json:"effective_limit"`
	EffectivePath string `json:"effective_path,omitempty"`
}

// files maps each file this version has to the field it fills.
func (m *Memcg) files(v2 bool) map[string]**int64 {
	if v2 {
		return map[string]**int64{"memory.max": &m.Limit, "memory.high": &m.High, "memory.swap.max": &m.SwapLimit,
			"memory.current": &m.Usage, "memory.swap.current": &m.SwapUsage, "memory.peak": &m.MaxUsage}
	}
	return map[string]**int64{"memory.limit_in_bytes": &m.Limit, "memory.memsw.limit_in_bytes": &m.MemSwLimit,
		"memory.usage_in_bytes": &m.Usage, "memory.max_usage_in_bytes": &m.MaxUsage, "memory.swappiness": &m.Swappiness}
}

// unlimited is PAGE_COUNTER_MAX in bytes (LONG_MAX rounded down to a page:
// 9223372036854771712 with 4 KiB pages), what an unlimited v1 counter reads.
var unlimited = int64(math.MaxInt64 / os.Getpagesize() * os.Getpagesize())

// ReadLimits reads the limits of the cgroup at path (relative to h.Root,
// as Resolver.Path returns it) and of each of its ancestors.
func ReadLimits(h Hierarchy, cgPath string) (Limits, error) {
	if !strings.HasPrefix(cgPath, "/") || path.Clean(cgPath) != cgPath {
		return Limits{}, fmt.Errorf("cgroup path %q: not a clean absolute path", cgPath)
	}
	var l Limits
	for p := cgPath; ; p = path.Dir(p) {
		m, err := readMemcg(h.Dir(p), h.V2)
		if err != nil {
			return Limits{}, err
		}
		m.Path = p
		l.Chain = append(l.Chain, m)
		if m.Limit != nil && (l.Effective == nil || *m.Limit < *l.Effective) {
			l.Effective, l.EffectivePath = m.Limit, p
		}
		if p == "/" {
			return l, nil
		}
	}
}

// readMemcg reads one memory cgroup's files through a descriptor of its
// directory: each value is then one openat, one read and one close, with no
// path walk from the hierarchy's root and no fstat. Enrichment runs between
// the kill and its line, so every system call here is latency.
func readMemcg(dir string, v2 bool) (Memcg, error) {
	dfd, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ENODEV) {
		return Memcg{Removed: true}, nil
	}
	if err != nil {
		return Memcg{}, fmt.Errorf("opening memory cgroup %s: %w", dir, err)
	}
	defer unix.Close(dfd)
	var m Memcg
	for name, field := range m.files(v2) {
		v, err := ReadValueAt(dfd, name)
		if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ENODEV) {
			// Missing file (root, no swap accounting) or the
			// cgroup itself is gone (ENODEV: removed while read).
			if _, serr := os.Stat(dir); errors.Is(serr, fs.ErrNotExist) {
				return Memcg{Removed: true}, nil
			}
			continue
		}
		if err != nil {
			return Memcg{}, &fs.PathError{Op: "read", Path: filepath.Join(dir, name), Err: err}
		}
		*field = v
	}
	return m, nil
}

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
	return parseValue(string(bytes.TrimSpace(data)))
}

// parseValue parses a byte count: nil for "max" and for v1's huge unlimited.
func parseValue(s string) (*int64, error) {
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
