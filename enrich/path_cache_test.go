package enrich

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/oomtrace/oomtrace/enrich/cgroups"
)

func TestLimitsCache(t *testing.T) {
	c := limitsCache{ttl: limitsTTL}
	reads := 0
	read := func(p string) (cgroups.Limits, error) {
		reads++
		return cgroups.Limits{EffectivePath: fmt.Sprintf("%s#%d", p, reads)}, nil
	}
	t0 := time.Unix(1000, 0)
	first, _ := c.get("/a", t0, read)
	again, _ := c.get("/a", t0.Add(limitsTTL-time.Millisecond), read)
	if reads != 1 || again.EffectivePath != first.EffectivePath {
		t.Errorf("within the TTL: %d reads, %q then %q", reads, first.EffectivePath, again.EffectivePath)
	}
	if l, _ := c.get("/a", t0.Add(limitsTTL), read); reads != 2 || l.EffectivePath != "/a#2" {
		t.Errorf("after the TTL: %d reads, got %q", reads, l.EffectivePath)
	}
	if l, _ := c.get("/b", t0, read); l.EffectivePath != "/b#3" {
		t.Errorf("another path served %q", l.EffectivePath)
	}
}

func TestLimitsCacheKeepsNoError(t *testing.T) {
	c := limitsCache{ttl: limitsTTL}
	fail := true
	read := func(string) (cgroups.Limits, error) {
		if fail {
			return cgroups.Limits{}, errors.New("gone")
		}
		return cgroups.Limits{EffectivePath: "ok"}, nil
	}
	now := time.Unix(1000, 0)
	if _, err := c.get("/a", now, read); err == nil {
		t.Fatal("the read's error was not returned")
	}
	fail = false
	if l, err := c.get("/a", now, read); err != nil || l.EffectivePath != "ok" {
		t.Errorf("a failed read was cached: %v %q", err, l.EffectivePath)
	}
}

func TestLimitsCacheBounded(t *testing.T) {
	c := limitsCache{ttl: limitsTTL}
	read := func(p string) (cgroups.Limits, error) { return cgroups.Limits{EffectivePath: p}, nil }
	now := time.Unix(1000, 0)
	for i := range pathCacheMax + 10 {
		if l, _ := c.get(fmt.Sprint("/", i), now, read); l.EffectivePath != fmt.Sprint("/", i) {
			t.Fatalf("path %d served %q", i, l.EffectivePath)
		}
	}
	if len(c.entries) > pathCacheMax {
		t.Errorf("%d entries, bound %d", len(c.entries), pathCacheMax)
	}
	// Once they expire, a new path evicts them.
	c.get("/new", now.Add(limitsTTL), read)
	if _, ok := c.entries["/new"]; !ok || len(c.entries) != 1 {
		t.Errorf("expired entries kept: %d entries", len(c.entries))
	}
}
