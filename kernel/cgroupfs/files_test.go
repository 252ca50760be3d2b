package cgroupfs

import "testing"

// Each version names exactly one swap limit, of its own kind, and the
// files both versions have; v1 alone has a per-memcg swappiness.
func TestFilesPerVersion(t *testing.T) {
	v1, v2 := Hierarchy{}.Files(), Hierarchy{V2: true}.Files()
	for _, tc := range []struct {
		what string
		got  string
		want string
	}{
		{"v1 limit", v1.Limit, "memory.limit_in_bytes"},
		{"v2 limit", v2.Limit, "memory.max"},
		{"v1 usage", v1.Usage, "memory.usage_in_bytes"},
		{"v2 usage", v2.Usage, "memory.current"},
		{"v1 high", v1.High, ""},
		{"v2 high", v2.High, "memory.high"},
		{"v1 swap alone", v1.SwapLimit, ""},
		{"v2 swap alone", v2.SwapLimit, "memory.swap.max"},
		{"v1 memory+swap", v1.MemswLimit, "memory.memsw.limit_in_bytes"},
		{"v2 memory+swap", v2.MemswLimit, ""},
		{"v1 swappiness", v1.Swappiness, "memory.swappiness"},
		{"v2 swappiness", v2.Swappiness, ""},
		{"v1 events", v1.Events, "memory.oom_control"},
		{"v2 events", v2.Events, "memory.events"},
		{"v1 stat", v1.Stat, "memory.stat"},
		{"v2 stat", v2.Stat, "memory.stat"},
		// v1's inactive_file is the cgroup's own pages: its children's
		// would be missed.
		{"v1 inactive file key", v1.InactiveFile, "total_inactive_file"},
		{"v2 inactive file key", v2.InactiveFile, "inactive_file"},
	} {
		if tc.got != tc.want {
			t.Errorf("%s: %q, want %q", tc.what, tc.got, tc.want)
		}
	}
}

func TestParseValue(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int64 // -1: nil
		err  bool
	}{
		{"max", -1, false},
		{"0", 0, false},
		{"67108864", 64 << 20, false},
		{"9223372036854771712", -1, false}, // v1's PAGE_COUNTER_MAX with 4 KiB pages
		{"18446744073709551615", -1, false},
		{"-1", 0, true},
		{"", 0, true},
	} {
		v, err := ParseValue(tc.in)
		got := int64(-1)
		if v != nil {
			got = *v
		}
		if (err != nil) != tc.err || (err == nil && got != tc.want) {
			t.Errorf("ParseValue(%q) = %d, %v; want %d, error %t", tc.in, got, err, tc.want, tc.err)
		}
	}
}
