package tracer

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/features"
)

// Capability bits (linux/capability.h).
const (
	capSysAdmin = 21
	capPerfmon  = 38
	capBPF      = 39
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
	caps, err := effectiveCaps()
	if err != nil {
		return fmt.Errorf("reading capabilities: %w", err)
	}
	has := func(bit uint) bool { return caps&(1<<bit) != 0 }
	if !has(capSysAdmin) && !(has(capBPF) && has(capPerfmon)) {
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

// effectiveCaps reads CapEff from /proc/self/status.
func effectiveCaps() (uint64, error) {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "CapEff:"); ok {
			return strconv.ParseUint(strings.TrimSpace(v), 16, 64)
		}
	}
	return 0, errors.New("no CapEff line in /proc/self/status")
}
