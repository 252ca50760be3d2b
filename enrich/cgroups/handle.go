package cgroups

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// fileidKernfs is FILEID_KERNFS (include/linux/exportfs.h): the file handle
// of a kernfs node, cgroups included, is its 64-bit id.
const fileidKernfs = 0xfe

// errGone: no cgroup with this id is visible under the root now (removed,
// or outside our cgroup namespace's view). A walk cannot find it either.
var errGone = errors.New("no such cgroup")

// onCgroupfs says whether root is a cgroup file system, the only kind whose
// file handles are cgroup ids (test fixtures on tmpfs or ext4 are not).
func onCgroupfs(root string) bool {
	var st unix.Statfs_t
	if err := unix.Statfs(root, &st); err != nil {
		return false
	}
	return st.Type == unix.CGROUP_SUPER_MAGIC || st.Type == unix.CGROUP2_SUPER_MAGIC
}

// pathByHandle finds a cgroup from its id with open_by_handle_at(2): a
// few microseconds, however many cgroups there are, instead of a walk of
// the whole hierarchy. It needs CAP_DAC_READ_SEARCH and cgroup file
// handles (kernel 4.13+; seen working on v1 and v2 with 6.18); callers
// fall back to walking on any error but errGone.
func pathByHandle(root string, id uint64) (string, error) {
	// Not O_PATH: older kernels look the mount fd up with fdget(),
	// which refuses O_PATH files.
	mnt, err := os.Open(root)
	if err != nil {
		return "", fmt.Errorf("opening cgroup root: %w", err)
	}
	defer mnt.Close()
	h := make([]byte, 8)
	binary.NativeEndian.PutUint64(h, id)
	fd, err := unix.OpenByHandleAt(int(mnt.Fd()), unix.NewFileHandle(fileidKernfs, h), unix.O_PATH|unix.O_CLOEXEC)
	if errors.Is(err, unix.ESTALE) {
		return "", fmt.Errorf("cgroup id %d: %w", id, errGone)
	}
	if err != nil {
		return "", fmt.Errorf("opening cgroup id %d by handle: %w", id, err)
	}
	defer unix.Close(fd)
	// The kernel's own names for both, so symlinks in root cannot
	// make the prefix test fail.
	base, err := os.Readlink("/proc/self/fd/" + strconv.Itoa(int(mnt.Fd())))
	if err != nil {
		return "", fmt.Errorf("reading cgroup root path: %w", err)
	}
	abs, err := os.Readlink("/proc/self/fd/" + strconv.Itoa(fd))
	if err != nil {
		return "", fmt.Errorf("reading cgroup id %d path: %w", id, err)
	}
	if strings.HasSuffix(abs, " (deleted)") {
		return "", fmt.Errorf("cgroup id %d: %w", id, errGone)
	}
	if abs == base {
		return "/", nil
	}
	if rel, ok := strings.CutPrefix(abs, strings.TrimSuffix(base, "/")+"/"); ok {
		return "/" + rel, nil
	}
	return "", fmt.Errorf("cgroup id %d at %s, outside %s: %w", id, abs, base, errGone)
}
