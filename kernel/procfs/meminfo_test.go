package procfs

import "testing"

func TestParseMeminfo(t *testing.T) {
	m := ParseMeminfo([]byte("MemTotal:       24683784 kB\nCommitted_AS:    2607684 kB\nHugePages_Total:       0\nbad line\nX: y kB\n"))
	if m["MemTotal"] != 24683784<<10 || m["Committed_AS"] != 2607684<<10 || len(m) != 2 {
		t.Errorf("parsed %v", m)
	}
}

// The real file has what the readers take from it.
func TestReadMeminfo(t *testing.T) {
	m, err := ReadMeminfo("/proc", nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"MemTotal", "SwapTotal", "CommitLimit", "Committed_AS", "AnonPages", "Cached", "Slab"} {
		if _, ok := m[name]; !ok {
			t.Errorf("no %s in /proc/meminfo", name)
		}
	}
}
