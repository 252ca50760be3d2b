package cgroups

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/oomtrace/oomtrace/internal/kfile"
	"github.com/oomtrace/oomtrace/kernel/cgroupfs"
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

// field is one file of a memcg and the field of Memcg it fills.
type field struct {
	name string // "" when the version has no such file
	dst  **int64
}

// fields pairs each file the table f names with the field it fills (an
// array, not a map: no allocation per cgroup read at a kill).
func (m *Memcg) fields(f cgroupfs.Files) [8]field {
	return [8]field{{f.Limit, &m.Limit}, {f.High, &m.High}, {f.SwapLimit, &m.SwapLimit}, {f.MemswLimit, &m.MemSwLimit},
		{f.Usage, &m.Usage}, {f.SwapUsage, &m.SwapUsage}, {f.MaxUsage, &m.MaxUsage}, {f.Swappiness, &m.Swappiness}}
}

// ReadLimits reads the limits of the cgroup at path (relative to h.Root,
// as Resolver.Path returns it) and of each of its ancestors.
func ReadLimits(h Hierarchy, cgPath string) (Limits, error) {
	if !strings.HasPrefix(cgPath, "/") || path.Clean(cgPath) != cgPath {
		return Limits{}, fmt.Errorf("cgroup path %q: not a clean absolute path", cgPath)
	}
	var l Limits
	for p := cgPath; ; p = path.Dir(p) {
		m, err := readMemcg(h.Dir(p), h.Files())
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
func readMemcg(dir string, files cgroupfs.Files) (Memcg, error) {
	dfd, err := kfile.Open(dir, unix.O_PATH|unix.O_DIRECTORY)
	if cgroupfs.Removed(err) {
		return Memcg{Removed: true}, nil
	}
	if err != nil {
		return Memcg{}, fmt.Errorf("opening memory cgroup %s: %w", dir, err)
	}
	defer kfile.Close(dfd)
	var m Memcg
	for _, f := range m.fields(files) {
		if f.name == "" {
			continue
		}
		v, err := cgroupfs.ReadValueAt(dfd, f.name)
		if cgroupfs.Removed(err) {
			// Missing file (root, no swap accounting) or the
			// cgroup itself is gone (ENODEV: removed while read).
			if _, serr := os.Stat(dir); errors.Is(serr, fs.ErrNotExist) {
				return Memcg{Removed: true}, nil
			}
			continue
		}
		if err != nil {
			return Memcg{}, &fs.PathError{Op: "read", Path: filepath.Join(dir, f.name), Err: err}
		}
		*f.dst = v
	}
	return m, nil
}
