package workload

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/oomtrace/oomtrace/kernel/procfs"

	"github.com/oomtrace/oomtrace/internal/kfile"
	"github.com/oomtrace/oomtrace/kernel/cgroupfs"
)

// Hierarchy is where memory cgroups live on this machine: the enricher's.
type Hierarchy = cgroupfs.Hierarchy

// FindHierarchy locates the memory controller: cgroup v2 when it is enabled
// there, else the v1 memory hierarchy.
func FindHierarchy() (Hierarchy, error) { return cgroupfs.FindMemoryHierarchy() }

// Cgroup is a scratch memory cgroup.
type Cgroup struct {
	Path       string
	V2         bool
	Files      cgroupfs.Files // its version's file names
	LimitBytes int64
	ID         uint64 // the cgroup id the kernel reports: the directory's inode
}

// CreateCgroup creates a scratch memory cgroup named oomtrace-test-NAME with a
// memory limit (and no swap; limitBytes 0: none) under parent (nil: the
// hierarchy's root). The caller must Remove it.
func CreateCgroup(h Hierarchy, parent *Cgroup, name string, limitBytes int64) (*Cgroup, error) {
	return create(h, parent, "oomtrace-test-"+name, limitBytes)
}

// CreateCgroupExact is CreateCgroup with the directory named exactly name
// (for paths that must look like a container runtime's).
func CreateCgroupExact(h Hierarchy, parent *Cgroup, name string, limitBytes int64) (*Cgroup, error) {
	return create(h, parent, name, limitBytes)
}

func create(h Hierarchy, parent *Cgroup, dirName string, limitBytes int64) (*Cgroup, error) {
	dir := h.Root
	if parent != nil {
		dir = parent.Path
	}
	if h.V2 && parent != nil {
		// Children of a v2 cgroup get a memory controller only when asked.
		if err := write(filepath.Join(parent.Path, "cgroup.subtree_control"), "+memory"); err != nil {
			return nil, err
		}
	}
	cg := &Cgroup{Path: filepath.Join(dir, dirName), V2: h.V2, Files: h.Files(), LimitBytes: limitBytes}
	if err := os.Mkdir(cg.Path, 0o755); err != nil {
		return nil, fmt.Errorf("creating scratch cgroup: %w", err)
	}
	if err := cg.setLimit(limitBytes); err != nil {
		_ = cg.Remove()
		return nil, err
	}
	var st syscall.Stat_t
	if err := syscall.Stat(cg.Path, &st); err != nil {
		_ = cg.Remove()
		return nil, fmt.Errorf("stat %s: %w", cg.Path, err)
	}
	cg.ID = st.Ino
	return cg, nil
}

func (c *Cgroup) setLimit(limit int64) error {
	if limit <= 0 {
		return nil
	}
	v := strconv.FormatInt(limit, 10)
	if c.V2 {
		if err := write(c.file(c.Files.Limit), v); err != nil {
			return err
		}
		// Absent when the kernel has no swap accounting: nothing to limit then.
		if _, err := os.Stat(c.file(c.Files.SwapLimit)); err == nil {
			return write(c.file(c.Files.SwapLimit), "0")
		}
		return nil
	}
	files := []string{c.file(c.Files.Limit)}
	if _, err := os.Stat(c.file(c.Files.MemswLimit)); err == nil {
		// v1 wants limit <= memsw limit at every step: raise memsw
		// first, lower it last.
		files = append(files, c.file(c.Files.MemswLimit))
		data, err := os.ReadFile(files[0])
		if err != nil {
			return err
		}
		if cur, err := strconv.ParseInt(strings.TrimSpace(string(data)), 10, 64); err == nil && limit > cur {
			files[0], files[1] = files[1], files[0]
		}
	}
	for _, f := range files {
		if err := write(f, v); err != nil {
			return err
		}
	}
	return nil
}

// SetLimit changes the cgroup's memory limit (and, on v1, its memory+swap
// limit with it: no swap), as NewCgroup set it.
func (c *Cgroup) SetLimit(limit int64) error { return c.setLimit(limit) }

func (c *Cgroup) file(name string) string { return filepath.Join(c.Path, name) }

// ProcsFile is the file a process writes its pid to, to move into the cgroup.
func (c *Cgroup) ProcsFile() string { return c.file("cgroup.procs") }

// OOMKills is the kernel's count of OOM kills in this cgroup: memory.events
// oom_kill on v2 (this cgroup and its descendants), memory.oom_control
// oom_kill on v1.
func (c *Cgroup) OOMKills() (uint64, error) {
	return readKeyed(c.file(c.Files.Events), "oom_kill")
}

// OOMs is memory.events oom: the times this cgroup (or a descendant) ran
// into its limit and the kernel went for the OOM killer, kill or not. ok is
// false on cgroup v1, which has no such count.
func (c *Cgroup) OOMs() (n uint64, ok bool, err error) {
	if !c.V2 {
		return 0, false, nil
	}
	n, err = readKeyed(c.file(c.Files.Events), "oom")
	return n, err == nil, err
}

// Pids lists the processes in the cgroup.
func (c *Cgroup) Pids() ([]int, error) {
	data, err := os.ReadFile(c.ProcsFile())
	if err != nil {
		return nil, err
	}
	var pids []int
	for _, f := range strings.Fields(string(data)) {
		if pid, err := strconv.Atoi(f); err == nil {
			pids = append(pids, pid)
		}
	}
	return pids, nil
}

// Remove kills everything left in the cgroup and removes it, children first.
func (c *Cgroup) Remove() error {
	entries, _ := os.ReadDir(c.Path)
	for _, e := range entries {
		if e.IsDir() {
			child := &Cgroup{Path: filepath.Join(c.Path, e.Name()), V2: c.V2, Files: c.Files}
			if err := child.Remove(); err != nil {
				return err
			}
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		pids, err := c.Pids()
		if errors.Is(err, os.ErrNotExist) {
			return nil
		}
		for _, pid := range pids {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
		if len(pids) == 0 {
			err := os.Remove(c.Path)
			if err == nil || errors.Is(err, os.ErrNotExist) {
				return nil
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("removing scratch cgroup %s: %w", c.Path, err)
			}
		} else if time.Now().After(deadline) {
			return fmt.Errorf("removing scratch cgroup %s: processes %v do not die", c.Path, pids)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// VMStatOOMKills is /proc/vmstat oom_kill: every OOM kill on the machine.
func VMStatOOMKills() (uint64, error) { return procfs.VMStatOOMKill() }

func readKeyed(path, key string) (uint64, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	n, ok := kfile.Keyed(data, key)
	if !ok || n < 0 {
		return 0, fmt.Errorf("%s: no %s line", path, key)
	}
	return uint64(n), nil
}

func write(path, value string) error {
	if err := os.WriteFile(path, []byte(value), 0o644); err != nil {
		return fmt.Errorf("writing %q to %s: %w", value, path, err)
	}
	return nil
}

// CanLowerOOMScoreAdj reports whether this process may set a negative
// oom_score_adj, which needs CAP_SYS_RESOURCE. Some sandboxes run root
// without it (the CI host does); the test VM has it.
func CanLowerOOMScoreAdj() bool {
	self, err := procfs.ReadStatus(0)
	return err == nil && self.Has(procfs.CapSysResource)
}
