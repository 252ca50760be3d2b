package docker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/oomtrace/oomtrace/internal/dockertest"
)

func TestMain(m *testing.M) { dockertest.Main(m) }

// errLog collects a cache's background errors.
type errLog struct {
	mu   sync.Mutex
	errs []error
}

func (l *errLog) add(err error) { l.mu.Lock(); l.errs = append(l.errs, err); l.mu.Unlock() }
func (l *errLog) count() int    { l.mu.Lock(); defer l.mu.Unlock(); return len(l.errs) }

// runCache runs a cache against the test engine until the test ends, and
// checks that Run then returns nil.
func runCache(t *testing.T, e *dockertest.Env) (*Cache, *errLog) {
	log := &errLog{}
	c := NewCache(Options{Host: e.Host, OnError: log.add})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	return c, log
}

// waitFor polls cond, generously bounded: it is how tests wait for the
// cache to learn something from Docker without a Lookup (which would inspect).
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("no %s within 30s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func cached(c *Cache, id string) func() bool {
	return func() bool { _, ok := c.store.Get(id, time.Now()); return ok }
}

// want reads what the docker CLI says of a container: an oracle independent
// of the client library.
func want(t *testing.T, e *dockertest.Env, id string) Info {
	out, err := e.Docker(context.Background(), "inspect", "--format",
		`{"ID":{{json .Id}},"Name":{{json .Name}},"Image":{{json .Config.Image}},"ImageID":{{json .Image}},"Labels":{{json .Config.Labels}},"MemoryLimit":{{.HostConfig.Memory}}}`, id)
	if err != nil {
		t.Fatal(err)
	}
	var info Info
	if err := json.Unmarshal([]byte(out), &info); err != nil {
		t.Fatalf("decoding %s: %v", out, err)
	}
	info.Name = info.Name[1:]
	return info
}

func equal(a, b Info) bool {
	return a.ID == b.ID && a.Name == b.Name && a.Image == b.Image && a.ImageID == b.ImageID &&
		a.MemoryLimit == b.MemoryLimit && maps.Equal(a.Labels, b.Labels)
}

func uniqueName(what string) string {
	return fmt.Sprintf("oomtrace-%s-%d-%d", what, os.Getpid(), time.Now().UnixNano()%1e6)
}

// (1) A container that existed before the cache started comes from the
// initial list, one started after it from the events; renames follow.
func TestNamedContainer(t *testing.T) {
	e := dockertest.RequireDocker(t)
	labels := map[string]string{"app": "shop", "com.example.team": "infra"}
	first := e.Start(t, dockertest.RunOpts{Name: uniqueName("first"), Labels: labels, Cmd: []string{"sleep", "300"}})
	c, _ := runCache(t, e)
	waitFor(t, "initial list", cached(c, first))
	second := e.Start(t, dockertest.RunOpts{Name: uniqueName("second"), Labels: labels, MemoryMB: 32, Cmd: []string{"sleep", "300"}})
	waitFor(t, "create event", cached(c, second))

	for _, id := range []string{first, second} {
		t0 := time.Now()
		got, err := c.Lookup(context.Background(), id)
		took := time.Since(t0)
		w := want(t, e, id)
		if err != nil || !equal(got, w) {
			t.Errorf("Lookup(%.12s) = %+v, %v; want %+v", id, got, err, w)
		}
		if got.Labels["app"] != "shop" || got.Image != e.Image(t) || (id == first) != (got.MemoryLimit == 64<<20) {
			t.Errorf("Lookup(%.12s) = %+v: labels, image or memory limit not as run", id, got)
		}
		t.Logf("hit in %v", took)
	}
	if s := c.Stats(); s.Hits != 2 || s.Misses != 0 {
		t.Errorf("stats %+v, want 2 hits from the cache", s)
	}
	// A cache that is not running yet answers by inspecting.
	cold := NewCache(Options{Host: e.Host})
	t0 := time.Now()
	got, err := cold.Lookup(context.Background(), first)
	if w := want(t, e, first); err != nil || !equal(got, w) {
		t.Errorf("cold Lookup = %+v, %v; want %+v", got, err, w)
	}
	t.Logf("miss (inspect, found) in %v", time.Since(t0))

	if _, err := e.Docker(context.Background(), "update", "--memory", "48m", "--memory-swap", "48m", first); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "update event", func() bool { info, _ := c.store.Get(first, time.Now()); return info.MemoryLimit == 48<<20 })
	renamed := uniqueName("renamed")
	if _, err := e.Docker(context.Background(), "rename", second, renamed); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "rename event", func() bool { info, _ := c.store.Get(second, time.Now()); return info.Name == renamed })

	t0 = time.Now()
	_, err = c.Lookup(context.Background(), randomID())
	if !errors.Is(err, ErrNotFound) {
		t.Errorf("Lookup of an unknown id: %v, want ErrNotFound", err)
	}
	t.Logf("miss (inspect, not found) in %v: %v", time.Since(t0), err)
}

// (2) An OOM-killed --rm container is still found once Docker removed it.
func TestRemovedAfterOOMKill(t *testing.T) {
	e := dockertest.RequireDocker(t)
	c, _ := runCache(t, e)
	name := uniqueName("hog")
	id, code := e.RunWait(t, dockertest.RunOpts{
		Name: name, Labels: map[string]string{"app": "hog"}, Remove: true, Cmd: dockertest.HogCmd(256, 2, "hog"),
	})
	if code != dockertest.ExitOOMKilled {
		t.Fatalf("hog exited %d, want %d (OOM-killed)", code, dockertest.ExitOOMKilled)
	}
	e.WaitRemoved(t, id, 30*time.Second)
	waitFor(t, "destroy event", func() bool { _, gone := c.store.Counts(); return gone > 0 })
	got, err := c.Lookup(context.Background(), id)
	if err != nil || got.ID != id || got.Name != name || got.Labels["app"] != "hog" || got.MemoryLimit != 64<<20 || got.ImageID == "" {
		t.Fatalf("Lookup of the removed hog = %+v, %v", got, err)
	}
	if s := c.Stats(); s.Hits != 1 || s.Retained < 1 {
		t.Fatalf("stats %+v, want a hit on a retained container", s)
	}
}

// (3) With Docker down, lookups fail within their bound and Run retries;
// once it is back, the cache reconnects, lists again and follows new
// containers.
func TestDockerRestart(t *testing.T) {
	e := dockertest.RequireDocker(t)
	if !e.Owned() {
		t.Skip("the Docker engine is the machine's own: not stopping it")
	}
	c, log := runCache(t, e)
	before, _ := e.RunWait(t, dockertest.RunOpts{Cmd: []string{"true"}})
	waitFor(t, "container before the restart", cached(c, before))

	e.StopDaemon(t)
	t0 := time.Now()
	_, err := c.Lookup(context.Background(), randomID())
	if d := time.Since(t0); !errors.Is(err, ErrUnavailable) || d > time.Second {
		t.Fatalf("Lookup with Docker down: %v after %v; want ErrUnavailable within MaxWait", err, d)
	}
	t.Logf("miss with Docker down in %v: %v", time.Since(t0), err)
	if _, err := c.Lookup(context.Background(), before); err != nil {
		t.Fatalf("Lookup of a cached container with Docker down: %v", err)
	}
	errs := log.count()
	waitFor(t, "reconnection attempts", func() bool { return log.count() >= errs+2 })

	e.StartDaemon(t)
	after, _ := e.RunWait(t, dockertest.RunOpts{Cmd: []string{"true"}})
	waitFor(t, "reconnect", func() bool { return c.Stats().Reconnects >= 1 })
	waitFor(t, "container after the restart", cached(c, after))
	if !c.store.LiveIDs()[before] {
		t.Error("the container from before the restart is no longer live after the re-list")
	}
	t.Logf("stats %+v; background errors %d", c.Stats(), log.count())
}
