package tracer

import (
	"errors"
	"fmt"
	"os"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/features"
	"github.com/oomtrace/oomtrace/kernel/procfs"
)

// ErrPermission means the process lacks the privileges to load BPF programs.
var ErrPermission = errors.New("oomtrace needs root, or CAP_BPF + CAP_PERFMON (CAP_SYS_ADMIN on kernels before 5.8)")

// ErrNoBTF means the kernel exposes no BTF, so CO-RE cannot relocate the program.
var ErrNoBTF = errors.New("kernel BTF not found at /sys/kernel/btf/vmlinux: oomtrace needs a kernel built with CONFIG_DEBUG_INFO_BTF=y (5.4+)")

// ErrNoRingBuf means the kernel has no BPF ring buffer, which the program
// streams its records through.
var ErrNoRingBuf = errors.New("the kernel has no BPF ring buffer map (BPF_MAP_TYPE_RINGBUF, Linux 5.8+): oomtrace needs Linux 5.8 or newer")

// btfPath is a variable so a test can point it elsewhere.
var btfPath = "/sys/kernel/btf/vmlinux"

// Preflight checks what the tracer cannot run without, so the user gets one
// clear sentence instead of a verifier log.
func Preflight() error {
	self, err := procfs.ReadStatus(0)
	if err != nil {
		return fmt.Errorf("reading capabilities: %w", err)
	}
	if !self.Has(procfs.CapSysAdmin) && !(self.Has(procfs.CapBPF) && self.Has(procfs.CapPerfmon)) {
		return ErrPermission
	}
	if _, err := os.Stat(btfPath); err != nil {
		return ErrNoBTF
	}
	// Probed, not inferred from the version: a vendor kernel may differ.
	if err := features.HaveMapType(ebpf.RingBuf); errors.Is(err, ebpf.ErrNotSupported) {
		return ErrNoRingBuf
	}
	return nil
}
