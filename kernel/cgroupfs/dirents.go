package cgroupfs

import (
	"bytes"
	"encoding/binary"

	"golang.org/x/sys/unix"
)

// eachSubdir calls fn for each subdirectory in a buffer filled by
// getdents64(2), with the inode the kernel returns beside the name: a cgroup's
// id, with no stat. A v1 memcg directory holds ~40 files; os.ReadDir would
// allocate and sort an entry for each.
func eachSubdir(buf []byte, fn func(ino uint64, name string)) {
	// struct linux_dirent64: u64 ino, s64 off, u16 reclen, u8 type, name NUL-terminated.
	for b := buf; len(b) >= 19; {
		reclen := int(binary.NativeEndian.Uint16(b[16:]))
		if reclen < 19 || reclen > len(b) {
			return
		}
		if b[18] == unix.DT_DIR {
			name, _, _ := bytes.Cut(b[19:reclen], []byte{0})
			if s := string(name); s != "." && s != ".." {
				fn(binary.NativeEndian.Uint64(b), s)
			}
		}
		b = b[reclen:]
	}
}
