package docker

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"net"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"
)

func randomID() string {
	b := make([]byte, 32)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// hungDocker is a socket that accepts connections and never answers.
func hungDocker(t *testing.T) string {
	sock := filepath.Join(t.TempDir(), "docker.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			t.Cleanup(func() { c.Close() })
		}
	}()
	return "unix://" + sock
}

func TestLookupInvalidID(t *testing.T) {
	c := NewCache(Options{Host: "unix:///nonexistent/docker.sock"})
	if _, err := c.Lookup(context.Background(), "abc"); !errors.Is(err, ErrInvalidID) {
		t.Fatalf("err %v, want ErrInvalidID", err)
	}
	if s := c.Stats(); s.Lookups != 1 || s.Errors != 1 || s.Misses != 0 {
		t.Fatalf("stats %+v", s)
	}
}

func TestLookupDockerDown(t *testing.T) {
	c := NewCache(Options{Host: "unix:///nonexistent/docker.sock", MaxWait: 5 * time.Second})
	t0 := time.Now()
	_, err := c.Lookup(context.Background(), randomID())
	if !errors.Is(err, ErrUnavailable) {
		t.Fatalf("err %v, want ErrUnavailable", err)
	}
	// Nothing listens: that is known at once, no need to wait for MaxWait.
	if d := time.Since(t0); d > time.Second {
		t.Fatalf("took %v with nothing listening", d)
	}
	t.Logf("%v in %v", err, time.Since(t0))
}

func TestLookupHungDocker(t *testing.T) {
	c := NewCache(Options{Host: hungDocker(t), MaxWait: 100 * time.Millisecond})
	t0 := time.Now()
	_, err := c.Lookup(context.Background(), randomID())
	d := time.Since(t0)
	if !errors.Is(err, ErrUnavailable) || d < 100*time.Millisecond || d > 2*time.Second {
		t.Fatalf("err %v after %v; want ErrUnavailable after 100ms", err, d)
	}
	if s := c.Stats(); s.Misses != 1 || s.Errors != 1 {
		t.Fatalf("stats %+v", s)
	}
}

// A lookup of a container whose create event is still on the way returns as
// soon as the cache learns it, even when the inspect hangs.
func TestLookupWaitsForCache(t *testing.T) {
	c := NewCache(Options{Host: hungDocker(t), MaxWait: 10 * time.Second})
	cid := randomID()
	go func() {
		time.Sleep(50 * time.Millisecond)
		c.store.Put(Info{ID: cid, Name: "late"})
	}()
	t0 := time.Now()
	info, err := c.Lookup(context.Background(), cid)
	if err != nil || info.Name != "late" {
		t.Fatalf("got %+v, %v", info, err)
	}
	if d := time.Since(t0); d > 5*time.Second {
		t.Fatalf("returned after %v, not when the cache learned it", d)
	}
}

func TestRunRetries(t *testing.T) {
	var errs atomic.Int32
	c := NewCache(Options{Host: "unix:///nonexistent/docker.sock", OnError: func(error) { errs.Add(1) }})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	deadline := time.Now().Add(10 * time.Second)
	for errs.Load() < 3 { // 100 + 200 + 400 ms of backoff
		if time.Now().After(deadline) {
			t.Fatalf("%d attempts in 10s", errs.Load())
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return after its context ended")
	}
	if s := c.Stats(); s.Reconnects != 0 {
		t.Fatalf("reconnects %d without a Docker", s.Reconnects)
	}
}

func TestBadHost(t *testing.T) {
	c := NewCache(Options{Host: "not a host"})
	if err := c.Run(context.Background()); err == nil {
		t.Fatal("Run with a bad host: no error")
	}
	if _, err := c.Lookup(context.Background(), randomID()); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Lookup with a bad host: %v", err)
	}
}
