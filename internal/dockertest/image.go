package dockertest

import (
	"archive/tar"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// hogPkg is the memory hog built into the image, as a static binary.
const hogPkg = "github.com/oomtrace/oomtrace/internal/oomtest/oomhog"

// Image returns the reference of a tiny image made once per test binary with
// `docker import` (no registry is needed): a static busybox with its applets
// in /bin (PATH=/bin, CMD /bin/sh) and the memory hog as /bin/oomhog.
func (e *Env) Image(tb testing.TB) string {
	tb.Helper()
	e.imageOnce.Do(func() {
		t0 := time.Now()
		e.imageErr = e.buildImage()
		e.imageTook = time.Since(t0)
	})
	if e.imageErr != nil {
		tb.Fatalf("building the test image: %v", e.imageErr)
	}
	return e.image
}

func (e *Env) buildImage() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	dir, err := os.MkdirTemp("", "oomtrace-image-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)

	hog := filepath.Join(dir, "oomhog")
	gobin, err := exec.LookPath("go")
	if err != nil {
		return fmt.Errorf("building oomhog: %w", err)
	}
	build := exec.CommandContext(ctx, gobin, "build", "-o", hog, hogPkg)
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		return fmt.Errorf("building oomhog: %w: %s", err, tail(out))
	}
	for _, bin := range []string{"/bin/busybox", hog} {
		if ok, err := isStatic(bin); err != nil || !ok {
			return fmt.Errorf("%s is not a static binary (%v): an image without libc cannot run it", bin, err)
		}
	}
	list, err := exec.CommandContext(ctx, "/bin/busybox", "--list").Output()
	if err != nil {
		return fmt.Errorf("listing busybox applets: %w", err)
	}

	// A per-process tag: on a shared system engine, another test binary
	// removing its image must not remove ours.
	ref := "oomtrace-test:" + strconv.Itoa(os.Getpid())
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(writeRootfs(pw, "/bin/busybox", hog, strings.Fields(string(list)))) }()
	cmd := exec.CommandContext(ctx, e.cli, "--host", e.Host, "import",
		"--change", "ENV PATH=/bin", "--change", `CMD ["/bin/sh"]`, "-", ref)
	cmd.Stdin = pr
	out, err := cmd.CombinedOutput()
	pr.Close()
	if err != nil {
		return fmt.Errorf("docker import: %w: %s", err, tail(out))
	}
	e.image = ref
	return nil
}

// writeRootfs writes the image's root filesystem as a tar stream.
func writeRootfs(w io.Writer, busybox, hog string, applets []string) error {
	tw := tar.NewWriter(w)
	for _, d := range []struct {
		name string
		mode int64
	}{{"bin/", 0o755}, {"dev/", 0o755}, {"etc/", 0o755}, {"proc/", 0o755}, {"sys/", 0o755}, {"tmp/", 0o1777}} {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: d.name, Mode: d.mode}); err != nil {
			return err
		}
	}
	for name, src := range map[string]string{"bin/busybox": busybox, "bin/oomhog": hog} {
		if err := addFile(tw, name, src); err != nil {
			return err
		}
	}
	for _, a := range applets {
		if a == "busybox" || strings.Contains(a, "/") {
			continue
		}
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeSymlink, Name: "bin/" + a, Linkname: "busybox", Mode: 0o777}); err != nil {
			return err
		}
	}
	return tw.Close()
}

func addFile(tw *tar.Writer, name, src string) error {
	f, err := os.Open(src)
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: 0o755, Size: st.Size()}); err != nil {
		return err
	}
	_, err = io.Copy(tw, f)
	return err
}
