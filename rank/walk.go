package rank

import (
	"errors"
	"fmt"
	"os"

	"github.com/oomtrace/oomtrace/enrich/cgroups"
	"github.com/oomtrace/oomtrace/internal/kfile"
	"github.com/oomtrace/oomtrace/kernel/cgroupfs"
	"golang.org/x/sys/unix"
)

// Source is where to read: the memory cgroup hierarchy and /proc. Both are
// injectable so that tests run on fixture trees.
type Source struct {
	Hierarchy cgroups.Hierarchy
	ProcRoot  string // "/proc" on a live system
}

// HostSource finds this machine's memory hierarchy.
func HostSource() (Source, error) {
	h, err := cgroups.FindMemoryHierarchy()
	if err != nil {
		return Source{}, err
	}
	return Source{Hierarchy: h, ProcRoot: "/proc"}, nil
}

func (s Source) dir(path string) string {
	if path == "/" {
		return s.Hierarchy.Root
	}
	return s.Hierarchy.Root + path
}

// node is one cgroup of a walk, in pre-order: the subtree of nodes[i] is
// nodes[i:nodes[i].end]. Byte counts are -1 when unlimited.
type node struct {
	path  string // relative to the root, "/" for the root itself
	id    uint64 // the directory's inode: the cgroup id the kernel reports
	end   int
	limit int64 // its own memory limit
	eff   int64 // the smallest limit from the root down to here
	effAt int   // index of the cgroup holding eff (the innermost on a tie), -1 when none
	usage int64 // read for the root and limited cgroups only, -1 otherwise
}

// walk lists every cgroup with its limits, and the usage of those that
// have one. Effective limits are carried down from the parent as the walk
// descends, so each limit file is read once per walk, not once per
// descendant as ReadLimits on every cgroup would. Files are opened
// relative to their directory's descriptor: resolving the whole path for
// each file cost a third of a walk. Cgroups removed meanwhile are left out.
func (s Source) walk(r *reader) ([]node, error) {
	var st unix.Stat_t
	if err := unix.Stat(s.Hierarchy.Root, &st); err != nil {
		return nil, fmt.Errorf("walking memory cgroups: %w", err)
	}
	w := walker{r: r, f: s.Hierarchy.Files(), dents: make([]byte, 16<<10)}
	w.nodes = []node{{path: "/", id: st.Ino}}
	if err := w.visit(0, -1, unix.AT_FDCWD, s.Hierarchy.Root); err != nil {
		return nil, fmt.Errorf("walking memory cgroups: %w", err)
	}
	return w.nodes, nil
}

type walker struct {
	r     *reader
	f     cgroupfs.Files
	nodes []node
	dents []byte
}

var errRemoved = errors.New("cgroup removed")

// visit reads cgroup i, the directory name under the descriptor at.
func (w *walker) visit(i, parent, at int, name string) error {
	fd, err := unix.Openat(at, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return classify(w.nodes[i].path, err)
	}
	defer unix.Close(fd)
	n := &w.nodes[i]
	if n.limit, err = w.r.intAt(fd, w.f.Limit); err != nil {
		return err
	}
	n.eff, n.effAt, n.usage = -1, -1, -1
	if parent >= 0 {
		n.eff, n.effAt = w.nodes[parent].eff, w.nodes[parent].effAt
	}
	if n.limit >= 0 && (n.eff < 0 || n.limit <= n.eff) {
		n.eff, n.effAt = n.limit, i
	}
	if n.limit >= 0 || i == 0 {
		if n.usage, err = w.r.intAt(fd, w.f.Usage); err != nil {
			return err
		}
	}
	subdirs, err := w.subdirs(fd, n.path)
	if err != nil {
		return err
	}
	for _, d := range subdirs {
		j := len(w.nodes)
		p := w.nodes[i].path + "/" + d.name
		if i == 0 {
			p = "/" + d.name
		}
		w.nodes = append(w.nodes, node{path: p, id: d.ino})
		if err := w.visit(j, i, fd, d.name); errors.Is(err, errRemoved) {
			w.nodes = w.nodes[:j]
		} else if err != nil {
			return err
		}
	}
	w.nodes[i].end = len(w.nodes)
	return nil
}

type dirent struct {
	ino  uint64
	name string
}

// subdirs reads a directory's subdirectories with getdents(2) (see
// cgroups.EachSubdir).
func (w *walker) subdirs(fd int, dir string) ([]dirent, error) {
	var out []dirent
	for {
		n, err := unix.Getdents(fd, w.dents)
		if err != nil {
			return nil, classify(dir, err)
		}
		if n == 0 {
			return out, nil
		}
		cgroups.EachSubdir(w.dents[:n], func(ino uint64, name string) {
			out = append(out, dirent{ino, name})
		})
	}
}

// classify turns "the cgroup went away" (ENOENT, or ENODEV from a
// directory removed while open) into errRemoved.
func classify(path string, err error) error {
	if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ENODEV) {
		return errRemoved
	}
	return &os.PathError{Op: "read", Path: path, Err: err}
}

// reader reads kernel files into one reused buffer with bare open, read,
// close: os.ReadFile adds an fstat and a poller registration, more than
// doubling the system calls over thousands of files per tick.
type reader struct{ buf []byte }

func newReader() *reader { return &reader{buf: make([]byte, 8<<10)} }

// read returns the file's content, valid until the next call.
func (r *reader) read(file string) ([]byte, error) {
	fd, err := unix.Open(file, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, classify(file, err)
	}
	defer unix.Close(fd)
	for n := 0; ; {
		if n == len(r.buf) {
			r.buf = append(r.buf, make([]byte, len(r.buf))...)
		}
		m, err := unix.Read(fd, r.buf[n:])
		if err != nil {
			return nil, classify(file, err)
		}
		if m == 0 {
			return r.buf[:n], nil
		}
		n += m
	}
}

// intAt reads a byte count from the file name under the directory
// descriptor at (see cgroupfs.ReadValueAt): -1 for "max", for v1's
// PAGE_COUNTER_MAX and for a missing file (the root has no limit files;
// memsw needs swap accounting).
func (r *reader) intAt(at int, name string) (int64, error) {
	v, err := cgroupfs.ReadValueAt(at, name)
	switch {
	case errors.Is(err, unix.ENOENT):
		return -1, nil
	case err != nil:
		return 0, classify(name, err)
	case v == nil:
		return -1, nil
	}
	return *v, nil
}

// keyed finds "key value" in a flat-keyed file such as memory.stat.
func keyed(data []byte, key string) (int64, bool) { return kfile.Keyed(data, key) }
