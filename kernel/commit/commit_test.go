package commit

import (
	"os"
	"path/filepath"
	"testing"
)

const page = 4096

// A node of 8 GiB RAM and 2 GiB swap.
var node = Accounting{
	Mode: ModeHeuristic, Ratio: 50, AdminReserveKbytes: 8192, UserReserveKbytes: 131072,
	CommitLimitBytes: 6 << 30, CommittedBytes: 5 << 30, MemTotalBytes: 8 << 30, SwapTotalBytes: 2 << 30,
}

var unlimited = Limits{AS: Unlimited, Data: Unlimited}

func TestClassify(t *testing.T) {
	strict := node
	strict.Mode = ModeNever
	always := node
	always.Mode = ModeAlways
	for _, c := range []struct {
		name string
		r    Request
		a    Accounting
		l    Limits
		want Rule
	}{
		// Mode 0 refuses one request above RAM + swap (10 GiB), no more.
		{"heuristic 1 TiB", Request{Bytes: 1 << 40}, node, unlimited, RuleHeuristic},
		{"heuristic 10 GiB + 1 page", Request{Bytes: 10<<30 + page}, node, unlimited, RuleHeuristic},
		{"heuristic exactly RAM + swap", Request{Bytes: 10 << 30}, node, unlimited, RuleOther},
		// Mode 2: Committed_AS + request against CommitLimit less the reserves.
		{"strict 2 GiB", Request{Bytes: 2 << 30}, strict, unlimited, RuleStrict},
		{"strict fork", Request{Bytes: 2 << 30, ForkLike: true}, strict, unlimited, RuleStrict},
		{"strict fits", Request{Bytes: 512 << 20, Privileged: true}, strict, unlimited, RuleOther},
		// 1 GiB free minus an 8 MiB admin reserve: 1 GiB does not fit unprivileged.
		{"strict admin reserve", Request{Bytes: 1<<30 - 4<<20}, strict, unlimited, RuleStrict},
		{"strict privileged", Request{Bytes: 1<<30 - 4<<20, Privileged: true}, strict, unlimited, RuleOther},
		{"always", Request{Bytes: 1 << 40}, always, unlimited, RuleOther},
		// may_expand_vm() comes first.
		{"rlimit_as", Request{Bytes: 64 << 20, TotalVMPages: 100 << 20 / page}, node, Limits{AS: 128 << 20, Data: Unlimited}, RuleRlimitAS},
		{"rlimit_as at the limit", Request{Bytes: 28 << 20, TotalVMPages: 100 << 20 / page}, node, Limits{AS: 128 << 20, Data: Unlimited}, RuleOther},
		{"rlimit_as before heuristic", Request{Bytes: 1 << 40}, node, Limits{AS: 1 << 30, Data: Unlimited}, RuleRlimitAS},
		{"rlimit_data", Request{Bytes: 64 << 20, DataPages: 100 << 20 / page}, node, Limits{AS: Unlimited, Data: 128 << 20}, RuleRlimitData},
		// A fork is not checked against the rlimits.
		{"fork ignores rlimits", Request{Bytes: 64 << 20, ForkLike: true, TotalVMPages: 1 << 20}, node, Limits{AS: 1 << 20, Data: 1 << 20}, RuleOther},
	} {
		if got := Classify(c.r, c.a, c.l, page).Rule; got != c.want {
			t.Errorf("%s: %s, want %s", c.name, got, c.want)
		}
	}
}

// The user reserve is the smaller of total_vm/32 and user_reserve_kbytes.
func TestReserve(t *testing.T) {
	if got := Reserve(node, 32*1024, true, page); got != 1024*page {
		t.Errorf("small process: %d, want total_vm/32 = %d", got, 1024*page)
	}
	if got := Reserve(node, 1<<30, false, page); got != (8192+131072)<<10 {
		t.Errorf("big unprivileged process: %d, want both reserves", got)
	}
}

func TestReadAccounting(t *testing.T) {
	root := t.TempDir()
	write := func(name, data string) {
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for name, v := range map[string]string{"overcommit_memory": "2\n", "overcommit_ratio": "50\n", "overcommit_kbytes": "0\n",
		"admin_reserve_kbytes": "8192\n", "user_reserve_kbytes": "131072\n"} {
		write("sys/vm/"+name, v)
	}
	write("meminfo", "MemTotal:        8000000 kB\nMemFree:  100 kB\nSwapTotal:       1000 kB\nCommitLimit:     4001000 kB\nCommitted_AS:    3999000 kB\n")
	a, err := ReadAccounting(root)
	if err != nil {
		t.Fatal(err)
	}
	want := Accounting{Mode: 2, Ratio: 50, AdminReserveKbytes: 8192, UserReserveKbytes: 131072,
		CommitLimitBytes: 4001000 << 10, CommittedBytes: 3999000 << 10, MemTotalBytes: 8000000 << 10, SwapTotalBytes: 1000 << 10}
	if a != want {
		t.Errorf("read %+v, want %+v", a, want)
	}
}

// The host's own accounting and this process's limits read.
func TestReadHost(t *testing.T) {
	a, err := ReadAccounting("/proc")
	if err != nil {
		t.Fatal(err)
	}
	if a.CommitLimitBytes == 0 || a.CommittedBytes == 0 {
		t.Errorf("host accounting %+v", a)
	}
	if _, err := ReadLimits(os.Getpid()); err != nil {
		t.Fatal(err)
	}
}

func TestReadLimitsFile(t *testing.T) {
	file := filepath.Join(t.TempDir(), "limits")
	data := `Limit                     Soft Limit           Hard Limit           Units
Max cpu time              unlimited            unlimited            seconds
Max data size             unlimited            unlimited            bytes
Max stack size            8388608              unlimited            bytes
Max address space         268435456            unlimited            bytes
`
	if err := os.WriteFile(file, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
	l, err := ReadLimitsFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if l.AS != 256<<20 || l.Data != Unlimited {
		t.Errorf("read %+v", l)
	}
	// The host's own file parses the same as prlimit(2) says.
	own, err := ReadLimitsFile("/proc/self/limits")
	if err != nil {
		t.Fatal(err)
	}
	if via, _ := ReadLimits(os.Getpid()); via != own {
		t.Errorf("/proc/self/limits %+v, prlimit %+v", own, via)
	}
}
