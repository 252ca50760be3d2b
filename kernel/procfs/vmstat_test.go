package procfs

import "testing"

func TestVMStatOOMKill(t *testing.T) {
	n, err := VMStatOOMKill()
	if err != nil {
		t.Fatalf("every kernel oomtrace supports (4.13+) has /proc/vmstat oom_kill: %v", err)
	}
	// A count: read again, it never goes down.
	if m, err := VMStatOOMKill(); err != nil || m < n {
		t.Errorf("oom_kill went from %d to %d (%v)", n, m, err)
	}
}

func TestBootID(t *testing.T) {
	a, err := BootID()
	if err != nil {
		t.Fatal(err)
	}
	// A UUID, the same while this boot lasts.
	if b, _ := BootID(); len(a) != 36 || a != b {
		t.Errorf("boot ids %q, %q: want one UUID", a, b)
	}
}
