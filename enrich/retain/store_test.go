package retain

import (
	"strings"
	"testing"
	"time"
)

type item struct{ ID, Name string }

func newItems(retention time.Duration, maxGone int) *Store[item] {
	return New(retention, maxGone, func(i item) string { return i.ID }, nil)
}

func id(n byte) string { return strings.Repeat(string('a'+n), 64) }

func TestStoreRetention(t *testing.T) {
	s := newItems(10*time.Minute, 3)
	t0 := time.Unix(1000, 0)
	s.Put(item{ID: id(0), Name: "web"})
	s.Remove(id(0), t0)
	if info, ok := s.Get(id(0), t0.Add(9*time.Minute)); !ok || info.Name != "web" {
		t.Fatalf("removed 9 min ago: %+v %v, want found", info, ok)
	}
	if _, ok := s.Get(id(0), t0.Add(10*time.Minute)); ok {
		t.Fatal("removed 10 min ago: found, want forgotten")
	}
	if live, gone := s.Counts(); live != 0 || gone != 0 {
		t.Fatalf("counts %d live, %d gone; want 0, 0", live, gone)
	}
}

func TestStoreMaxRetained(t *testing.T) {
	s := newItems(time.Hour, 3)
	t0 := time.Unix(1000, 0)
	for i := range byte(5) {
		s.Put(item{ID: id(i)})
		s.Remove(id(i), t0.Add(time.Duration(i)*time.Second))
	}
	now := t0.Add(time.Minute)
	for i := range byte(5) {
		if _, ok := s.Get(id(i), now); ok != (i >= 2) {
			t.Errorf("container %d found: %v; want only the 3 removed last", i, ok)
		}
	}
}

// An inspect answered after the destroy event must not revive the container.
func TestStorePutAfterRemove(t *testing.T) {
	s := newItems(time.Hour, 10)
	now := time.Unix(1000, 0)
	s.Put(item{ID: id(0), Name: "old"})
	s.Remove(id(0), now)
	s.Put(item{ID: id(0), Name: "new"})
	if live, gone := s.Counts(); live != 0 || gone != 1 {
		t.Fatalf("counts %d live, %d gone; want 0 live, 1 gone", live, gone)
	}
	if info, _ := s.Get(id(0), now); info.Name != "new" {
		t.Fatalf("name %q, want the newer answer", info.Name)
	}
}

func TestStoreSync(t *testing.T) {
	s := newItems(time.Hour, 10)
	now := time.Unix(1000, 0)
	s.Put(item{ID: id(0)})
	s.Put(item{ID: id(1)})
	before := s.LiveIDs()
	s.Put(item{ID: id(2)}) // learned by a Lookup while the list ran
	s.Sync(before, map[string]item{id(0): {ID: id(0), Name: "renamed"}, id(3): {ID: id(3)}}, now)
	live := s.LiveIDs()
	for i, want := range []bool{true, false, true, true} {
		if live[id(byte(i))] != want {
			t.Errorf("container %d live: %v, want %v", i, live[id(byte(i))], want)
		}
	}
	if _, ok := s.Get(id(1), now); !ok {
		t.Error("container 1, absent from the list, is not retained")
	}
	if info, _ := s.Get(id(0), now); info.Name != "renamed" {
		t.Errorf("container 0 named %q after the list, want renamed", info.Name)
	}
}
