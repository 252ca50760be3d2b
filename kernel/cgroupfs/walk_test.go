package cgroupfs

import (
	"errors"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/oomtrace/oomtrace/internal/kfile"
)

// walkTree makes a fixture hierarchy of the given cgroup directories, each
// holding a memory.max naming its own path and a file that is no cgroup.
func walkTree(t *testing.T, paths ...string) string {
	t.Helper()
	var tree = map[string]map[string]string{"/": {"memory.max": "/\n", "cgroup.procs": ""}}
	for _, p := range paths {
		tree[p] = map[string]string{"memory.max": p + "\n", "cgroup.procs": ""}
	}
	return mkTree(t, tree)
}

func ino(t *testing.T, dir string) uint64 {
	t.Helper()
	var st syscall.Stat_t
	if err := syscall.Stat(dir, &st); err != nil {
		t.Fatal(err)
	}
	return st.Ino
}

type visit struct {
	path, parent string
	depth        int
	end          int // how many cgroups were entered when its subtree was left
}

// record walks root, keeping what each callback saw, after checking the
// cgroup's id and descriptor; then enter may act. The value handed down is
// the index of the cgroup in the result.
func record(t *testing.T, root string, enter func(d Dir) error) ([]visit, error) {
	t.Helper()
	var out []visit
	err := Walk(root, -1, func(d Dir, parent int) (int, error) {
		// The descriptor is the cgroup's directory: its files read through it.
		var buf [256]byte
		data, err := kfile.ReadAt(d.Fd, "memory.max", buf[:])
		if err != nil || strings.TrimSpace(string(data)) != d.Path {
			t.Errorf("%s: memory.max through Fd reads %q, %v", d.Path, data, err)
		}
		if want := ino(t, filepath.Join(root, d.Path)); d.ID != want {
			t.Errorf("%s: id %d, want its inode %d", d.Path, d.ID, want)
		}
		if err := enter(d); err != nil {
			return 0, err
		}
		v := visit{path: d.Path, depth: d.Depth, end: -1}
		if parent >= 0 {
			v.parent = out[parent].path
		}
		out = append(out, v)
		return len(out) - 1, nil
	}, func(i int, gone bool) {
		if gone {
			out[i].end = -2
			return
		}
		out[i].end = len(out)
	})
	return out, err
}

func TestWalkPreOrder(t *testing.T) {
	root := walkTree(t, "/a", "/a/b", "/a/b/c", "/a/d", "/e")
	got, err := record(t, root, func(Dir) error { return nil })
	if err != nil {
		t.Fatal(err)
	}
	var paths []string
	for i, v := range got {
		paths = append(paths, v.path)
		wantParent, wantDepth := path.Dir(v.path), strings.Count(v.path, "/")
		if v.path == "/" {
			wantParent, wantDepth = "", 0
		}
		if v.parent != wantParent || v.depth != wantDepth {
			t.Errorf("%s: parent %q depth %d, want %q %d", v.path, v.parent, v.depth, wantParent, wantDepth)
		}
		// Its subtree is got[i:end]: every descendant, nothing else.
		for j := range got {
			inside := j >= i && j < v.end
			below := got[j].path == v.path || strings.HasPrefix(got[j].path, strings.TrimSuffix(v.path, "/")+"/")
			if inside != below {
				t.Errorf("%s: subtree [%d:%d] and %s at %d disagree", v.path, i, v.end, got[j].path, j)
			}
		}
	}
	sorted := slices.Clone(paths)
	slices.Sort(sorted)
	if !slices.Equal(sorted, []string{"/", "/a", "/a/b", "/a/b/c", "/a/d", "/e"}) {
		t.Errorf("walked %v: files are no cgroups, every directory is one", paths)
	}
}

// Cgroups removed during the walk are left out without an error: before
// they are opened, when enter finds them gone, and while they are listed.
func TestWalkRemoved(t *testing.T) {
	t.Run("before open", func(t *testing.T) {
		root := walkTree(t, "/x", "/y")
		removed := ""
		got, err := record(t, root, func(d Dir) error {
			if d.Depth == 1 && removed == "" {
				// Listed with its sibling, gone before it is opened.
				removed = map[string]string{"/x": "/y", "/y": "/x"}[d.Path]
				return os.RemoveAll(filepath.Join(root, removed))
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		for _, v := range got {
			if v.path == removed {
				t.Errorf("%s walked after its removal", removed)
			}
		}
		if len(got) != 2 {
			t.Errorf("walked %+v, want the root and one child", got)
		}
	})
	t.Run("enter says removed", func(t *testing.T) {
		root := walkTree(t, "/a", "/a/b", "/c")
		got, err := record(t, root, func(d Dir) error {
			if d.Path == "/a" {
				return &os.PathError{Op: "read", Path: "memory.max", Err: ErrRemoved}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 2 || got[0].path != "/" || got[1].path != "/c" || got[0].end != 2 {
			t.Errorf("walked %+v, want / and /c only, /a's subtree left out", got)
		}
	})
	t.Run("while listed", func(t *testing.T) {
		root := walkTree(t, "/a", "/c")
		got, err := record(t, root, func(d Dir) error {
			if d.Path == "/a" {
				// Open, then removed: getdents on it says ENOENT.
				if err := os.RemoveAll(filepath.Join(root, "a")); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		for _, v := range got {
			if want := map[bool]int{true: -2, false: v.end}[v.path == "/a"]; v.end != want {
				t.Errorf("%s: left with end %d, want %d (-2: gone)", v.path, v.end, want)
			}
		}
	})
}

func TestWalkErrors(t *testing.T) {
	root := walkTree(t, "/a")
	boom := errors.New("boom")
	if _, err := record(t, root, func(d Dir) error {
		if d.Path == "/a" {
			return boom
		}
		return nil
	}); !errors.Is(err, boom) {
		t.Errorf("enter's error: walk returned %v", err)
	}
	// The root is not a cgroup that may vanish: without it there is no walk.
	if _, err := record(t, root, func(d Dir) error {
		if d.Depth == 0 {
			return ErrRemoved
		}
		return nil
	}); !errors.Is(err, ErrRemoved) {
		t.Errorf("root removed: walk returned %v", err)
	}
	if _, err := record(t, filepath.Join(root, "absent"), func(Dir) error { return nil }); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("absent root: walk returned %v", err)
	}
}
