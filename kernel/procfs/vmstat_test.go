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
