package version

import (
	"runtime"
	"strings"
	"testing"
)

// Read itself is tested on the built binary (cmd/oomtrace's
// TestBinaryVersion): a test binary records no dependencies.

func TestReadWithoutDependencies(t *testing.T) {
	i := Read("abc123")
	if i.Go != runtime.Version() || i.BPFObject != "abc123" {
		t.Fatalf("Read: %+v, want go %s and the object hash given", i, runtime.Version())
	}
}

func TestString(t *testing.T) {
	s := Info{Version: "v1.2.3", Go: "go1.26.8", CiliumEBPF: "v0.22.0", BPFObject: "ff00"}.String()
	for _, want := range []string{"oomtrace: v1.2.3\n", "revision: unknown\n", "go: go1.26.8\n", "cilium/ebpf: v0.22.0\n", "bpf object (sha256): ff00\n"} {
		if !strings.Contains(s, want) {
			t.Errorf("--version text lacks %q:\n%s", want, s)
		}
	}
}

func TestShort(t *testing.T) {
	for _, tc := range []struct {
		i    Info
		want string
	}{
		{Info{Version: "v1.2.3", Revision: "abc"}, "v1.2.3"},
		{Info{Version: "(devel)", Revision: "abc+dirty"}, "abc+dirty"},
		{Info{}, "devel"},
	} {
		if got := tc.i.Short(); got != tc.want {
			t.Errorf("%+v: Short %q, want %q", tc.i, got, tc.want)
		}
	}
}
