package dockertest

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestMain(m *testing.M) { Main(m) }

func TestWriteRootfs(t *testing.T) {
	dir := t.TempDir()
	bb, hog := filepath.Join(dir, "bb"), filepath.Join(dir, "hog")
	os.WriteFile(bb, []byte("busybox"), 0o755)
	os.WriteFile(hog, []byte("hog"), 0o755)
	var buf bytes.Buffer
	if err := writeRootfs(&buf, bb, hog, []string{"sh", "busybox", "sleep"}); err != nil {
		t.Fatal(err)
	}
	got := map[string]*tar.Header{}
	tr := tar.NewReader(&buf)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		got[h.Name] = h
	}
	for name, want := range map[string]struct {
		typ  byte
		mode int64
		link string
	}{
		"bin/busybox": {tar.TypeReg, 0o755, ""},
		"bin/oomhog":  {tar.TypeReg, 0o755, ""},
		"bin/sh":      {tar.TypeSymlink, 0o777, "busybox"},
		"bin/sleep":   {tar.TypeSymlink, 0o777, "busybox"},
		"tmp/":        {tar.TypeDir, 0o1777, ""},
	} {
		h := got[name]
		if h == nil || h.Typeflag != want.typ || h.Mode != want.mode || h.Linkname != want.link {
			t.Errorf("%s: got %+v, want type %c mode %o link %q", name, h, want.typ, want.mode, want.link)
		}
	}
	if h := got["bin/busybox"]; h != nil && h.Size != int64(len("busybox")) {
		t.Errorf("bin/busybox: size %d", h.Size)
	}
}

// TestOOMKill is the engine's contract the other packages' tests rely on: a
// hog over the 64 MiB limit is OOM-killed (137, OOMKilled), one under it is not.
func TestOOMKill(t *testing.T) {
	e := RequireDocker(t)
	e.Image(t)
	t.Logf("engine %s (owned: %v), started in %v, image built in %v", e.Host, e.Owned(), e.startTook, e.imageTook)
	for _, tc := range []struct {
		mb        int
		code      int
		oomKilled bool
	}{{256, ExitOOMKilled, true}, {16, 3, false}} {
		t0 := time.Now()
		id, code := e.RunWait(t, RunOpts{Cmd: HogCmd(tc.mb, 2, "hog"), Labels: map[string]string{"test": t.Name()}})
		st, err := e.Inspect(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("hog %d MiB: exit %d, %+v, in %v", tc.mb, code, st, time.Since(t0))
		if code != tc.code || st.ExitCode != tc.code || st.OOMKilled != tc.oomKilled {
			t.Errorf("hog %d MiB in 64 MiB: exit %d, state %+v; want exit %d, OOMKilled %v", tc.mb, code, st, tc.code, tc.oomKilled)
		}
	}
}

func TestRemoved(t *testing.T) {
	e := RequireDocker(t)
	id, code := e.RunWait(t, RunOpts{Remove: true, Cmd: []string{"true"}})
	if code != 0 {
		t.Fatalf("true: exit %d", code)
	}
	e.WaitRemoved(t, id, 30*time.Second)
	if _, err := e.Inspect(context.Background(), id); !errors.Is(err, ErrNoSuchContainer) {
		t.Fatalf("inspect of a removed container: %v", err)
	}
}

func TestStopStart(t *testing.T) {
	e := RequireDocker(t)
	img := e.Image(t)
	t0 := time.Now()
	e.StopDaemon(t)
	t.Logf("stopped in %v", time.Since(t0))
	if err := e.ping(5 * time.Second); err == nil {
		t.Fatal("the engine answers after StopDaemon")
	}
	t0 = time.Now()
	e.StartDaemon(t)
	t.Logf("started again in %v", time.Since(t0))
	if _, err := e.Docker(context.Background(), "image", "inspect", img); err != nil {
		t.Fatalf("image lost over a restart: %v", err)
	}
}
