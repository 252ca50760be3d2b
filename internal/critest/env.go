package critest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/oomtrace/oomtrace/internal/testdaemon"
)

// Env is the private containerd the tests of this binary share.
type Env struct {
	Endpoint string // the CRI endpoint, as a kubelet's --container-runtime-endpoint: unix:///.../containerd.sock
	Dir      string // containerd's directory: config.toml, containerd.log, pod logs under pods/

	// How long the setup took, for the tests' logs.
	StartTook  time.Duration // containerd started until its CRI service answered
	PauseTook  time.Duration // writing and importing the pause image
	HogTook    time.Duration // building oomhog, writing and importing the hog image (0 until HogImage)
	d          *daemon
	rt         runtimeapi.RuntimeServiceClient
	img        runtimeapi.ImageServiceClient
	hogOnce    sync.Once
	hogErr     error
	mu         sync.Mutex // serializes the journal, and pod creation with the removal of kubepods parents
	livePods   int
	newParents []string // kubepods cgroups our pods created; removed once no pod is left
}

var (
	mainCalled bool
	shared     struct {
		once sync.Once
		env  *Env
		err  error
	}
)

// Main runs the tests, then removes every pod still there, stops containerd
// and deletes its directory. Call it from TestMain. A hook at the end of the
// binary, not at some test's cleanup: the containerd is shared, and which
// test ends last is not known (parallel tests, -run, -count).
func Main(m *testing.M) {
	mainCalled = true
	testdaemon.Main(m, "critest", shutdown)
}

// Start returns the shared containerd, starting it (and importing the pause
// image) on first use. It skips the test only when it cannot run at all
// here: not root, or containerd, ctr or runc not installed. Anything else
// fails the test, with containerd's log: a machine where the tests are meant
// to run must not pass by skipping them.
func Start(tb testing.TB) *Env {
	tb.Helper()
	if os.Geteuid() != 0 {
		tb.Skip("needs root: runs containerd and containers in memory cgroups (run `make test` as root)")
	}
	for _, bin := range []string{containerdBin, ctrBin, runcBin} {
		if _, err := os.Stat(bin); err != nil {
			tb.Skipf("needs %s (Debian packages containerd and runc): %v", bin, err)
		}
	}
	if !mainCalled {
		tb.Fatal("critest: TestMain must call critest.Main(m), which stops the shared containerd at the end")
	}
	shared.once.Do(func() { shared.env, shared.err = setup() })
	if shared.err != nil {
		tb.Fatalf("containerd: %v", shared.err)
	}
	return shared.env
}

func setup() (*Env, error) {
	if err := requireStatic(busybox); err != nil {
		return nil, err
	}
	d, err := newDaemon()
	if err != nil {
		return nil, err
	}
	e := &Env{Endpoint: "unix://" + d.sock(), Dir: d.dir, d: d}
	t0 := time.Now()
	if err := d.start(PauseImage); err != nil {
		return nil, errors.Join(err, d.remove())
	}
	e.StartTook = time.Since(t0)
	e.rt = runtimeapi.NewRuntimeServiceClient(d.conn)
	e.img = runtimeapi.NewImageServiceClient(d.conn)

	t0 = time.Now()
	archive := filepath.Join(d.dir, "pause.tar")
	err = writeArchiveFile(archive, shortRef(PauseImage), pauseConfig, pauseFiles())
	if err == nil {
		err = e.importArchive(archive, PauseImage)
	}
	if err != nil {
		return nil, errors.Join(fmt.Errorf("pause image: %w", err), d.remove())
	}
	e.PauseTook = time.Since(t0)
	return e, nil
}

func shutdown() error {
	e := shared.env
	if e == nil {
		return nil
	}
	// The tests' cleanups removed their pods; these are what a failed
	// cleanup left. containerd does not stop its containers when it stops.
	var errs []error
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if resp, err := e.rt.ListPodSandbox(ctx, &runtimeapi.ListPodSandboxRequest{}); err != nil {
		errs = append(errs, fmt.Errorf("listing pods left: %w", err))
	} else {
		for _, sb := range resp.Items {
			errs = append(errs, e.removeSandbox(ctx, sb.Id))
		}
	}
	// cleanDir removes the pods' cgroups, kubepods parents, shim sockets.
	return errors.Join(append(errs, e.d.remove())...)
}

// Client is the CRI runtime service, for calls this package has no helper for.
func (e *Env) Client() runtimeapi.RuntimeServiceClient { return e.rt }

// ImageClient is the CRI image service.
func (e *Env) ImageClient() runtimeapi.ImageServiceClient { return e.img }

// LogTail is the end of containerd's log, for failure messages.
func (e *Env) LogTail() string { return e.d.logTail() }

// HogImage returns the reference of the hog image, built and imported once
// per test binary: busybox with its applets in /bin (PATH=/bin, CMD
// /bin/sh) and the memory hog as /bin/oomhog (its flags: workload.Hog.Args).
func (e *Env) HogImage(tb testing.TB) string {
	tb.Helper()
	e.hogOnce.Do(func() {
		t0 := time.Now()
		e.hogErr = e.buildHogImage()
		e.HogTook = time.Since(t0)
	})
	if e.hogErr != nil {
		tb.Fatalf("hog image: %v", e.hogErr)
	}
	return hogImage
}

func (e *Env) buildHogImage() error {
	dir, err := os.MkdirTemp(e.Dir, "hog-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	hog, err := buildHog(dir)
	if err != nil {
		return err
	}
	files, err := hogFiles(hog)
	if err != nil {
		return err
	}
	archive := filepath.Join(dir, "hog.tar")
	if err := writeArchiveFile(archive, shortRef(hogImage), hogConfig, files); err != nil {
		return err
	}
	return e.importArchive(archive, hogImage)
}

// ImportArchive imports an image archive (docker-archive, as
// WriteDockerArchive writes, or OCI) and waits until the CRI plugin knows it
// as ref (normalized: docker.io/library/name:tag).
func (e *Env) ImportArchive(tb testing.TB, archive, ref string) {
	tb.Helper()
	if err := e.importArchive(archive, ref); err != nil {
		tb.Fatal(err)
	}
}

func (e *Env) importArchive(archive, ref string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	// Unpacked for the native snapshotter, the one the CRI plugin uses.
	if err := e.d.ctr(ctx, "images", "import", "--snapshotter", "native", archive); err != nil {
		return err
	}
	// The CRI plugin learns of the image from containerd's events, a moment
	// after ctr returns; until then it would try to pull it (and fail: no
	// registry).
	for {
		st, err := e.img.ImageStatus(ctx, &runtimeapi.ImageStatusRequest{Image: &runtimeapi.ImageSpec{Image: ref}})
		if err == nil && st.Image != nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("the CRI plugin does not see image %s after ctr imported it (last: %v); containerd's log ends:\n%s", ref, err, e.d.logTail())
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// ctx bounds one CRI call of a test: a hung containerd fails the test
// instead of hanging it until go test's -timeout.
func (e *Env) ctx(tb testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	tb.Cleanup(cancel)
	return ctx
}
