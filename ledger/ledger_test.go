package ledger

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"
)

func TestSaveLoad(t *testing.T) {
	dir := t.TempDir()
	if _, err := Load(dir); !errors.Is(err, ErrNoState) {
		t.Fatalf("empty dir: %v, want ErrNoState", err)
	}
	seq := uint64(88021)
	s := State{
		BootID: "efe1f4b3-0838-4fa9-801c-67fba45ef19a", SavedAt: time.Date(2026, 12, 1, 14, 0, 0, 5, time.UTC),
		VMStatOOMKill: 32390, Cgroups: []Cgroup{{Path: "/a", ID: 7, OOMKill: 3}, {Path: "/a/b", ID: 9}}, KmsgSeq: &seq, MonotonicNs: 21221533557000,
	}
	if err := Save(dir, s); err != nil {
		t.Fatal(err)
	}
	got, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	s.Version = Version
	if !reflect.DeepEqual(got, s) {
		t.Errorf("round trip:\n got %+v\nwant %+v", got, s)
	}
	// Saved again: replaced, and no temporary file left behind.
	s.VMStatOOMKill++
	if err := Save(dir, s); err != nil {
		t.Fatal(err)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 || entries[0].Name() != FileName {
		t.Errorf("dir holds %v, want %s alone", entries, FileName)
	}
	if got, _ := Load(dir); got.VMStatOOMKill != s.VMStatOOMKill {
		t.Errorf("second save not read: %d", got.VMStatOOMKill)
	}
}

func TestLoadCorrupt(t *testing.T) {
	for name, data := range map[string]string{
		"truncated":     `{"version":1,"boot_id":"x","vmstat_oom_kill":`,
		"not json":      "\x00\x00\x00",
		"empty":         "",
		"other version": `{"version":99,"boot_id":"x"}`,
		"no boot id":    `{"version":1}`,
	} {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, FileName), []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
		var ce *CorruptError
		if _, err := Load(dir); !errors.As(err, &ce) {
			t.Errorf("%s: %v, want a CorruptError", name, err)
		}
	}
}

func TestSaveUnwritable(t *testing.T) {
	if err := Save(filepath.Join(t.TempDir(), "missing"), State{BootID: "x"}); err == nil {
		t.Error("saved into a directory that does not exist")
	}
}

func TestCompare(t *testing.T) {
	then := State{VMStatOOMKill: 100, Cgroups: []Cgroup{
		{Path: "/grew", ID: 1, OOMKill: 2},
		{Path: "/same", ID: 2, OOMKill: 5},
		{Path: "/removed", ID: 3, OOMKill: 1},
		{Path: "/recreated", ID: 4, OOMKill: 9},
	}}
	now := State{VMStatOOMKill: 107, Cgroups: []Cgroup{
		{Path: "/grew", ID: 1, OOMKill: 5},
		{Path: "/same", ID: 2, OOMKill: 5},
		{Path: "/new", ID: 5, OOMKill: 2},
		{Path: "/new-quiet", ID: 6, OOMKill: 0},
		{Path: "/recreated", ID: 8, OOMKill: 1},
	}}
	machine, cgroups := Compare(then, now)
	if machine != 7 {
		t.Errorf("machine %d, want 7", machine)
	}
	want := []Missed{
		{Path: "/grew", ID: 1, Kills: 3},
		{Path: "/new", ID: 5, Kills: 2, New: true},
		{Path: "/recreated", ID: 8, Kills: 1, New: true},
	}
	if !reflect.DeepEqual(cgroups, want) {
		t.Errorf("cgroups:\n got %+v\nwant %+v", cgroups, want)
	}
	// The machine count never underflows; cgroups not in the older state
	// (here /removed and /recreated, id 4) count from zero.
	if m, c := Compare(now, then); m != 0 || len(c) != 2 {
		t.Errorf("reversed: machine %d cgroups %+v", m, c)
	}
}
