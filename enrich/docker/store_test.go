package docker

import (
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/events"
)

func TestValidID(t *testing.T) {
	full := strings.Repeat("0123456789abcdef", 4)
	for id, want := range map[string]bool{
		full:                  true,
		full[:63]:             false, // short
		full + "0":            false, // long
		full[:12]:             false, // a short id is ambiguous
		strings.ToUpper(full): false, // Docker's ids are lowercase
		full[:63] + "g":       false,
		"":                    false,
	} {
		if got := ValidID(id); got != want {
			t.Errorf("ValidID(%q) = %v, want %v", id, got, want)
		}
	}
}

func id(n byte) string { return strings.Repeat(string('a'+n), 64) }

func TestStoreRetention(t *testing.T) {
	s := newStore(10*time.Minute, 3)
	t0 := time.Unix(1000, 0)
	s.put(Info{ID: id(0), Name: "web"})
	s.remove(id(0), t0)
	if info, ok := s.get(id(0), t0.Add(9*time.Minute)); !ok || info.Name != "web" {
		t.Fatalf("removed 9 min ago: %+v %v, want found", info, ok)
	}
	if _, ok := s.get(id(0), t0.Add(10*time.Minute)); ok {
		t.Fatal("removed 10 min ago: found, want forgotten")
	}
	if live, gone := s.counts(); live != 0 || gone != 0 {
		t.Fatalf("counts %d live, %d gone; want 0, 0", live, gone)
	}
}

func TestStoreMaxRetained(t *testing.T) {
	s := newStore(time.Hour, 3)
	t0 := time.Unix(1000, 0)
	for i := range byte(5) {
		s.put(Info{ID: id(i)})
		s.remove(id(i), t0.Add(time.Duration(i)*time.Second))
	}
	now := t0.Add(time.Minute)
	for i := range byte(5) {
		if _, ok := s.get(id(i), now); ok != (i >= 2) {
			t.Errorf("container %d found: %v; want only the 3 removed last", i, ok)
		}
	}
}

// An inspect answered after the destroy event must not revive the container.
func TestStorePutAfterRemove(t *testing.T) {
	s := newStore(time.Hour, 10)
	now := time.Unix(1000, 0)
	s.put(Info{ID: id(0), Name: "old"})
	s.remove(id(0), now)
	s.put(Info{ID: id(0), Name: "new"})
	if live, gone := s.counts(); live != 0 || gone != 1 {
		t.Fatalf("counts %d live, %d gone; want 0 live, 1 gone", live, gone)
	}
	if info, _ := s.get(id(0), now); info.Name != "new" {
		t.Fatalf("name %q, want the newer answer", info.Name)
	}
}

func TestStoreSync(t *testing.T) {
	s := newStore(time.Hour, 10)
	now := time.Unix(1000, 0)
	s.put(Info{ID: id(0)})
	s.put(Info{ID: id(1)})
	before := s.liveIDs()
	s.put(Info{ID: id(2)}) // learned by a Lookup while the list ran
	s.sync(before, map[string]Info{id(0): {ID: id(0), Name: "renamed"}, id(3): {ID: id(3)}}, now)
	live := s.liveIDs()
	for i, want := range []bool{true, false, true, true} {
		if live[id(byte(i))] != want {
			t.Errorf("container %d live: %v, want %v", i, live[id(byte(i))], want)
		}
	}
	if _, ok := s.get(id(1), now); !ok {
		t.Error("container 1, absent from the list, is not retained")
	}
	if info, _ := s.get(id(0), now); info.Name != "renamed" {
		t.Errorf("container 0 named %q after the list, want renamed", info.Name)
	}
}

func TestFromEvent(t *testing.T) {
	info := fromEvent(events.Actor{ID: id(0), Attributes: map[string]string{
		"name": "web", "image": "nginx", "exitCode": "137", "app": "shop",
	}})
	want := Info{ID: id(0), Name: "web", Image: "nginx", Labels: map[string]string{"app": "shop"}}
	if info.ID != want.ID || info.Name != want.Name || info.Image != want.Image || !maps.Equal(info.Labels, want.Labels) {
		t.Fatalf("got %+v, want %+v", info, want)
	}
}
