package main

import (
	"os"
	"os/exec"
	"regexp"
	"runtime"
	"strings"
	"testing"

	"github.com/oomtrace/oomtrace/tracer"
)

// --version names the Go and cilium/ebpf versions the binary was built
// with (cilium/ebpf's as go.mod requires it) and the BPF object's hash.
func TestBinaryVersion(t *testing.T) {
	gomod, err := os.ReadFile("../../go.mod")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^\s*github\.com/cilium/ebpf (v\S+)`).FindSubmatch(gomod)
	if m == nil {
		t.Fatal("go.mod requires no cilium/ebpf")
	}
	out, err := exec.Command(buildBinary(t), "--version").CombinedOutput()
	if err != nil {
		t.Fatalf("--version: %v\n%s", err, out)
	}
	for _, want := range []string{
		"go: " + runtime.Version() + "\n",
		"cilium/ebpf: " + string(m[1]) + "\n",
		"bpf object (sha256): " + tracer.ObjectHash() + "\n",
	} {
		if !strings.Contains(string(out), want) {
			t.Errorf("--version lacks %q:\n%s", want, out)
		}
	}
}
